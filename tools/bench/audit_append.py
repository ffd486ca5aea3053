#!/usr/bin/env python3
"""Audit append throughput on PostgreSQL: group commit off vs on, side by side.

    .venv/bin/python tools/bench/audit_append.py [--entries 2000] [--rounds 3] [--direct]

In a scratch schema, three audit services run at once on the same chain
(`python -m services.audit`): "off" with AUDIT_GROUP_COMMIT=false (every
Append/AppendBatch is its own transaction, serialised on the chain head row
lock), "on" with group commit and one writer (AUDIT_GROUP_COMMIT_WRITERS=1:
one transaction per group of concurrent appends) and "on2" with two group
writers (the next group waits on the head lock while one commits). Each round measures, for
each service in turn (interleaved, so machine noise hits both alike):
  gRPC/1, gRPC/8, gRPC/32   that many concurrent clients calling Append one
                            after another (a fresh caller token per call,
                            as kyc-tier's client mints them)
  batch100/1, batch100/8    that many concurrent clients calling AppendBatch
                            with 100 entries (the outbox relay's batch)
and reports per configuration the median appends/s over the rounds and the
on/off ratio. `--direct` adds the library-level figures (one and eight
processes appending without gRPC, one transaction per entry).
Every entry is committed (synchronous_commit on, PostgreSQL's default)
before it counts. At the end the whole chain is verified (AuditLog.verify,
the code `identity audit verify` runs) and its rate is reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import threading
import time

import grpc
from common import machine_speed, scratch_schema, service_process, summarise

from identity_crypto.keyring import Keyring, generate
from identity_platform_api.audit.v1 import audit_pb2, audit_pb2_grpc
from identity_store.db import Database
from services.audit.bootstrap import open_database
from services.audit.chain import Draft
from services.audit.log import AuditLog
from tests.support.meshauth import caller_metadata

SHA = "cd" * 32


def draft(writer: int, i: int) -> Draft:
    return Draft(
        tenant_id=f"org_{writer % 3}",
        actor=f"service:bench{writer}",
        action="stepup.decide",
        subject=f"customer:cus_{writer}_{i}",
        outcome="success",
        request_id=f"r{writer}-{i}",
        evidence_hashes={"bundle": SHA},
        details={"score": "0.81", "model_id": "sface-2021dec"},
    )


def direct_writer(
    url: str, keyring_json: str, writer: int, count: int, barrier: threading.Barrier
) -> list[float]:
    database = open_database(url)
    audit_log = AuditLog(Keyring.from_json(keyring_json))
    latencies = []
    barrier.wait()
    for i in range(count):
        started = time.perf_counter()
        with database.transaction() as session:
            audit_log.append(session, [draft(writer, i)])
        latencies.append(time.perf_counter() - started)
    database.dispose()
    return latencies


def run_direct(url: str, keyring: Keyring, writers: int, per_writer: int) -> dict:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(writers + 1)
        with context.Pool(writers) as pool:
            pending = pool.starmap_async(
                direct_writer,
                [(url, keyring.to_json(), w, per_writer, barrier) for w in range(writers)],
            )
            barrier.wait()
            started = time.perf_counter()
            latencies = [x for part in pending.get() for x in part]
            wall = time.perf_counter() - started
    return {
        "path": f"direct/{writers}",
        "entries": len(latencies),
        "entries_per_s": round(len(latencies) / wall),
        **summarise(latencies),
    }


def append_request(d: Draft) -> audit_pb2.AppendRequest:
    return audit_pb2.AppendRequest(
        actor=d.actor,
        action=d.action,
        subject=d.subject,
        outcome=audit_pb2.OUTCOME_SUCCESS,
        evidence_hashes=d.evidence_hashes,
        details=d.details,
    )


async def run_grpc(address: str, writers: int, per_writer: int, batch: int = 0) -> dict:
    """`writers` concurrent clients; Append one by one, or AppendBatch of `batch`."""
    latencies: list[float] = []
    counted = [0]
    async with grpc.aio.insecure_channel(address) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)

        async def writer(w: int, calls: int) -> None:
            for i in range(calls):
                metadata = caller_metadata(
                    f"org_{w % 3}", actor=f"service:bench{w}", issuer="kyc-tier"
                )
                started = time.perf_counter()
                if batch:
                    response = await stub.AppendBatch(
                        audit_pb2.AppendBatchRequest(
                            entries=[
                                audit_pb2.BatchEntry(
                                    entry=append_request(draft(w, i * batch + j)),
                                    request_id=f"r{j}",
                                )
                                for j in range(batch)
                            ]
                        ),
                        metadata=metadata,
                    )
                    if any(r.HasField("refused") for r in response.results):
                        raise RuntimeError("an entry of the benchmark's batch was refused")
                    counted[0] += len(response.results)
                else:
                    await stub.Append(append_request(draft(w, i)), metadata=metadata)
                    counted[0] += 1
                latencies.append(time.perf_counter() - started)

        await writer(99, 2)  # warm-up connection
        latencies.clear()
        counted[0] = 0
        started = time.perf_counter()
        calls = max(1, per_writer // batch) if batch else per_writer
        await asyncio.gather(*(writer(w, calls) for w in range(writers)))
        wall = time.perf_counter() - started
    return {
        "entries": counted[0],
        "entries_per_s": round(counted[0] / wall),
        **summarise(latencies),
    }


# (label, concurrent clients, entries per batch call or 0 for Append)
CONFIGURATIONS = [
    ("gRPC/1", 1, 0),
    ("gRPC/8", 8, 0),
    ("gRPC/32", 32, 0),
    ("batch100/1", 1, 100),
    ("batch100/8", 8, 100),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=2000, help="entries per configuration")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--direct", action="store_true", help="also the no-gRPC figures")
    args = parser.parse_args()
    keyring = generate("audit-bench")
    direct = []
    modes = ["off", "on", "on2"]
    samples: dict[str, dict[str, list[dict]]] = {
        label: {mode: [] for mode in modes} for label, _, _ in CONFIGURATIONS
    }
    with scratch_schema() as url:
        if args.direct:
            direct.append(run_direct(url, keyring, 1, args.entries))
            direct.append(run_direct(url, keyring, 8, args.entries // 8))
        env = {"AUDIT_DATABASE_URL": url, "AUDIT_HMAC_KEYRING": keyring.to_json()}
        on = {"AUDIT_GROUP_COMMIT": "true", "AUDIT_GROUP_COMMIT_WRITERS": "1"}
        on2 = {"AUDIT_GROUP_COMMIT": "true", "AUDIT_GROUP_COMMIT_WRITERS": "2"}
        with (
            service_process("services.audit", {**env, "AUDIT_GROUP_COMMIT": "false"}) as (a, _),
            service_process("services.audit", {**env, **on}) as (b, _),
            service_process("services.audit", {**env, **on2}) as (c, _),
        ):
            for round_ in range(args.rounds):
                for label, writers, batch in CONFIGURATIONS:
                    # Rotate which service goes first, round by round.
                    order = [("off", a), ("on", b), ("on2", c)]
                    order = order[round_ % 3 :] + order[: round_ % 3]
                    for mode, address in order:
                        per_writer = max(1, args.entries // writers)
                        samples[label][mode].append(
                            asyncio.run(run_grpc(address, writers, per_writer, batch))
                        )
        database = Database(url)
        started = time.perf_counter()
        report = AuditLog(keyring).verify(database.transaction)
        verify_s = time.perf_counter() - started
        database.dispose()
    results = []
    for label, _, _ in CONFIGURATIONS:
        off_rate = statistics.median(s["entries_per_s"] for s in samples[label]["off"])
        on_rate = statistics.median(s["entries_per_s"] for s in samples[label]["on"])
        results.append(
            {
                "path": label,
                "group_commit_off_per_s": round(off_rate),
                "group_commit_on_per_s": round(on_rate),
                "ratio_on_off": round(on_rate / off_rate, 2),
                "off_rounds": [s["entries_per_s"] for s in samples[label]["off"]],
                "on_rounds": [s["entries_per_s"] for s in samples[label]["on"]],
                "on2_writers_per_s": round(
                    statistics.median(s["entries_per_s"] for s in samples[label]["on2"])
                ),
                "on2_rounds": [s["entries_per_s"] for s in samples[label]["on2"]],
                "off_call_p50_ms": statistics.median(s["p50_ms"] for s in samples[label]["off"]),
                "on_call_p50_ms": statistics.median(s["p50_ms"] for s in samples[label]["on"]),
            }
        )
    print(
        json.dumps(
            {
                "results": results,
                "direct": direct,
                "verify": {
                    "intact": report.intact,
                    "problem": report.problem,
                    "entries": report.entries_checked,
                    "entries_per_s": round(report.entries_checked / verify_s),
                },
                "python_10M_loop_s": machine_speed(),
            },
            indent=2,
        )
    )
    if not report.intact:
        raise SystemExit("the chain does not verify")


if __name__ == "__main__":
    main()
