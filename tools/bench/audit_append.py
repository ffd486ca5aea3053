#!/usr/bin/env python3
"""Audit append throughput on PostgreSQL: one writer, eight writers, and through gRPC.

    .venv/bin/python tools/bench/audit_append.py [--entries 2000]

In a scratch schema:
  direct/1      one process, one connection, one transaction per entry
  direct/8      eight processes, own connections, one transaction per entry
                (they serialise on the chain head row lock)
  gRPC/1        one client calling Append one after another on the real
                audit service (`python -m services.audit`)
  gRPC/8        eight concurrent clients on the same service (group commit
                batches what arrives together into one transaction)
Every entry is committed (synchronous_commit on, PostgreSQL's default)
before it counts. At the end the whole chain is verified, and its rate is
reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
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


def direct_writer(url: str, keyring_json: str, writer: int, count: int, barrier) -> list[float]:
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


async def run_grpc(address: str, writers: int, per_writer: int) -> dict:
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)

        async def writer(w: int) -> None:
            for i in range(per_writer):
                d = draft(w, i)
                request = audit_pb2.AppendRequest(
                    actor=d.actor,
                    action=d.action,
                    subject=d.subject,
                    outcome=audit_pb2.OUTCOME_SUCCESS,
                    evidence_hashes=d.evidence_hashes,
                    details=d.details,
                )
                started = time.perf_counter()
                # A fresh token per call, as kyc-tier's client mints them.
                metadata = caller_metadata(f"org_{w % 3}", actor=d.actor, issuer="kyc-tier")
                await stub.Append(request, metadata=metadata)
                latencies.append(time.perf_counter() - started)

        await writer(99)  # warm-up connection
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(writers)))
        wall = time.perf_counter() - started
    return {
        "path": f"gRPC/{writers}",
        "entries": len(latencies),
        "entries_per_s": round(len(latencies) / wall),
        **summarise(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=2000, help="entries per configuration")
    args = parser.parse_args()
    keyring = generate("audit-bench")
    results = []
    with scratch_schema() as url:
        results.append(run_direct(url, keyring, 1, args.entries))
        results.append(run_direct(url, keyring, 8, args.entries // 8))
        env = {"AUDIT_DATABASE_URL": url, "AUDIT_HMAC_KEYRING": keyring.to_json()}
        with service_process("services.audit", env) as (address, _pid):
            results.append(asyncio.run(run_grpc(address, 1, args.entries)))
            results.append(asyncio.run(run_grpc(address, 8, args.entries // 8)))
        database = Database(url)
        started = time.perf_counter()
        report = AuditLog(keyring).verify(database.transaction)
        verify_s = time.perf_counter() - started
        database.dispose()
    print(
        json.dumps(
            {
                "results": results,
                "verify": {
                    "intact": report.intact,
                    "entries": report.entries_checked,
                    "entries_per_s": round(report.entries_checked / verify_s),
                },
                "python_10M_loop_s": machine_speed(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
