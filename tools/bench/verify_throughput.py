#!/usr/bin/env python3
"""1:1 verify throughput of the matching service: in-process vs through gRPC,
single Verify vs VerifyBatch, and (with --baseline-root) another checkout's
service side by side.

    .venv/bin/python tools/bench/verify_throughput.py [--customers 1000] [--calls 3000]
        [--batch 64] [--baseline-root /work/main]

Sets up a scratch PostgreSQL schema with one organisation and N enrolled
customers (SFace contract, 128-d, sealed fp16 templates), then verifies
(probe, customer_id) pairs in these ways, interleaved in one run:

  in-process        MatchingEngine.verify from this process's event loop
  in-process batch  MatchingEngine.verify_batch, --batch pairs a call
  gRPC              the real service (`python -m services.matching`) pinned to
                    one CPU with taskset, called over loopback
  gRPC batch        the same server's VerifyBatch, --batch pairs a call
  gRPC cache off    a second server with MATCHING_TEMPLATE_CACHE_SIZE=0 (every
                    call reads and opens the sealed template)
  gRPC baseline     (--baseline-root) that checkout's service, same database
  gRPC floor        DescribeThreshold on the same server: no database, no
                    template, the gRPC path's own cost per call
  gRPC baseline batch / floor   (--baseline-root) the same for that checkout
                    (its VerifyBatch and DescribeThreshold)
  gRPC bare aio / bare sync floor   DescribeThreshold on tools/bench/bare_grpc.py:
                    grpcio alone (grpc.aio, or the thread-pool server), no
                    interceptor, auth, log or database: the ceiling of any
                    service built on grpcio on this machine

--grpc-only leaves out the in-process and cache-off paths.

each with 1 and with 8 concurrent callers. Before measuring, every path
verifies each customer once (the template cache is warm: the steady state of
repeat verifications; "gRPC cache off" is the cold-cache cost). "per CPU-s"
is verified pairs per CPU second of the matching process (utime+stime from
/proc), which is what one core of matching sustains; PostgreSQL's own CPU is
not included in it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import grpc
import numpy as np
from common import (
    caller_metadata,
    machine_speed,
    matching_env,
    process_cpu_seconds,
    scratch_schema,
    service_process,
    summarise,
    variant,
)

from identity_crypto.keyring import generate
from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.matching.v1 import matching_pb2, matching_pb2_grpc
from identity_runtime import context
from identity_runtime.settings import load_settings
from services.matching.bootstrap import build
from services.matching.contract import EmbeddingContract
from services.matching.engine import BatchItem, EmbeddingInput
from services.matching.settings import MatchingSettings

CONTRACT = EmbeddingContract("sface-2021dec", "", 128)

# One call's (probe values, customer id) pairs, and a path that verifies them.
Pairs = list[tuple[list[float], str]]
Call = Callable[[Pairs], Awaitable[None]]


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 128)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


async def run_calls(
    call: Call,
    probes: Sequence[list[float]],
    customers: Sequence[str],
    pairs: int,
    concurrency: int,
    batch: int,
) -> tuple[float, list[float]]:
    """`pairs` verifications, `batch` per call; (wall seconds, per-call latencies)."""
    latencies: list[float] = []
    counter = iter(range(0, pairs, batch))

    async def worker() -> None:
        for first in counter:
            chosen = [
                (probes[i % len(probes)], customers[i % len(customers)])
                for i in range(first, first + batch)
            ]
            started = time.perf_counter()
            await call(chosen)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=3000, help="pairs verified per measurement")
    parser.add_argument("--batch", type=int, default=64, help="pairs per VerifyBatch call")
    parser.add_argument(
        "--server-cpu", type=int, default=0, help="CPU the gRPC servers are pinned to"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="interleaved rounds; medians are reported"
    )
    parser.add_argument(
        "--baseline-root",
        type=Path,
        default=None,
        help="another checkout (with its .venv) whose service runs as 'gRPC baseline'",
    )
    parser.add_argument(
        "--variant",
        type=variant,
        action="append",
        default=[],
        help="NAME:KEY=VALUE,... another server of this checkout with those variables, "
        "measured on Verify and DescribeThreshold (e.g. nolog:MATCHING_LOG_LEVEL=WARNING)",
    )
    parser.add_argument(
        "--grpc-only",
        action="store_true",
        help="measure only the gRPC paths of the current (and baseline) server, cache on",
    )
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    keyring = generate("kek-bench")
    results = []
    with scratch_schema() as url:
        env = matching_env(url, MATCHING_KEK_KEYRING=keyring.to_json())
        settings = load_settings(MatchingSettings, "MATCHING", env)
        core = await build(settings)
        token = context.bind(context.CallContext(request_id="bench", org_id="org_bench"))
        faces = unit(rng, args.customers)
        customers = [f"cus_{i:06d}" for i in range(args.customers)]
        for customer_id, face in zip(customers, faces, strict=True):
            await core.engine.enroll(
                "org_bench",
                customer_id,
                EmbeddingInput(CONTRACT, face.tolist()),
                "dukcapil",
                "",
                False,
            )
        probes = [p.tolist() for p in unit(rng, 256)]

        async def in_process(chosen: Pairs) -> None:
            for probe, customer_id in chosen:
                await core.engine.verify(
                    "org_bench", EmbeddingInput(CONTRACT, probe), customer_id, None
                )

        async def in_process_batch(chosen: Pairs) -> None:
            outcomes = await core.engine.verify_batch(
                "org_bench", [BatchItem(c, EmbeddingInput(CONTRACT, p)) for p, c in chosen]
            )
            assert not any(isinstance(o, Exception) for o in outcomes)

        contract = types_pb2.EmbeddingContract(model_id="sface-2021dec", dimension=128)

        def grpc_single(stub: matching_pb2_grpc.MatchingServiceAsyncStub) -> Call:
            async def call(chosen: Pairs) -> None:
                for probe, customer_id in chosen:
                    await stub.Verify(
                        matching_pb2.VerifyRequest(
                            probe=types_pb2.Embedding(contract=contract, values=probe),
                            customer_id=customer_id,
                        ),
                        metadata=caller_metadata("org_bench"),
                    )

            return call

        def grpc_floor(stub: matching_pb2_grpc.MatchingServiceAsyncStub) -> Call:
            # The cheapest RPC of the service (no database, no template): what the
            # gRPC path alone (server, interceptors, access log) costs a call.
            async def call(chosen: Pairs) -> None:
                for _ in chosen:
                    await stub.DescribeThreshold(
                        matching_pb2.DescribeThresholdRequest(),
                        metadata=caller_metadata("org_bench"),
                    )

            return call

        def grpc_batch(stub: matching_pb2_grpc.MatchingServiceAsyncStub) -> Call:
            async def call(chosen: Pairs) -> None:
                response = await stub.VerifyBatch(
                    matching_pb2.VerifyBatchRequest(
                        items=[
                            matching_pb2.VerifyBatchItem(
                                customer_id=customer_id,
                                probe=types_pb2.Embedding(contract=contract, values=probe),
                            )
                            for probe, customer_id in chosen
                        ]
                    ),
                    metadata=caller_metadata("org_bench"),
                )
                assert all(r.HasField("result") for r in response.results)

            return call

        with contextlib.ExitStack() as stack:
            servers = {
                "current": stack.enter_context(
                    service_process("services.matching", env, cpu=args.server_cpu)
                ),
                "cache off": stack.enter_context(
                    service_process(
                        "services.matching",
                        {**env, "MATCHING_TEMPLATE_CACHE_SIZE": "0"},
                        cpu=args.server_cpu,
                    )
                ),
            }
            for name, extra in args.variant:
                servers[name] = stack.enter_context(
                    service_process("services.matching", {**env, **extra}, cpu=args.server_cpu)
                )
            # grpcio alone (no interceptor, auth, log or database): the ceiling.
            servers["bare aio"] = stack.enter_context(
                service_process("tools.bench.bare_grpc", {}, cpu=args.server_cpu)
            )
            servers["bare sync"] = stack.enter_context(
                service_process("tools.bench.bare_grpc", {}, cpu=args.server_cpu, args=["--sync"])
            )
            if args.baseline_root is not None:
                servers["baseline"] = stack.enter_context(
                    service_process(
                        "services.matching", env, cpu=args.server_cpu, root=args.baseline_root
                    )
                )
            channels = {
                name: grpc.aio.insecure_channel(address) for name, (address, _) in servers.items()
            }
            stubs = {n: matching_pb2_grpc.MatchingServiceStub(c) for n, c in channels.items()}
            pid = {n: p for n, (_, p) in servers.items()}
            paths = {
                "in-process": (in_process, 1, time.process_time),
                "in-process batch": (in_process_batch, args.batch, time.process_time),
                "gRPC": (grpc_single(stubs["current"]), 1, cpu_of(pid["current"])),
                "gRPC batch": (grpc_batch(stubs["current"]), args.batch, cpu_of(pid["current"])),
                "gRPC floor (DescribeThreshold)": (
                    grpc_floor(stubs["current"]),
                    1,
                    cpu_of(pid["current"]),
                ),
                "gRPC cache off": (
                    grpc_single(stubs["cache off"]),
                    1,
                    cpu_of(pid["cache off"]),
                ),
            }
            for name, _ in args.variant:
                paths[f"gRPC {name}"] = (grpc_single(stubs[name]), 1, cpu_of(pid[name]))
                paths[f"gRPC {name} floor"] = (grpc_floor(stubs[name]), 1, cpu_of(pid[name]))
            for bare in ("bare aio", "bare sync"):
                paths[f"gRPC {bare} floor (grpcio alone)"] = (
                    grpc_floor(stubs[bare]),
                    1,
                    cpu_of(pid[bare]),
                )
            if "baseline" in stubs:
                paths["gRPC baseline"] = (
                    grpc_single(stubs["baseline"]),
                    1,
                    cpu_of(pid["baseline"]),
                )
                paths["gRPC baseline batch"] = (
                    grpc_batch(stubs["baseline"]),
                    args.batch,
                    cpu_of(pid["baseline"]),
                )
                paths["gRPC baseline floor (DescribeThreshold)"] = (
                    grpc_floor(stubs["baseline"]),
                    1,
                    cpu_of(pid["baseline"]),
                )
            if args.grpc_only:
                for name in ("in-process", "in-process batch", "gRPC cache off"):
                    del paths[name]
            samples: dict[tuple[str, int], list[dict]] = {}
            for name, (call, batch, _) in list(paths.items()):  # warm every cache once
                try:
                    await run_calls(call, probes, customers, len(customers), 8, batch)
                except grpc.aio.AioRpcError as error:
                    # A baseline from before VerifyBatch existed: that path is left out.
                    if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                        raise
                    print(f"{name}: not offered by that checkout, left out")
                    del paths[name]
            for _ in range(args.repeats):
                # Interleaved, so background load on the shared machine hits every path alike.
                for name, (call, batch, cpu_clock) in paths.items():
                    for concurrency in (1, 8):
                        await run_calls(call, probes, customers, 2 * batch, concurrency, batch)
                        cpu_before = cpu_clock()
                        wall, latencies = await run_calls(
                            call, probes, customers, args.calls, concurrency, batch
                        )
                        cpu = cpu_clock() - cpu_before
                        samples.setdefault((name, concurrency), []).append(
                            {
                                "pairs_per_s": args.calls / wall,
                                "pairs_per_cpu_s": args.calls / cpu,
                                **summarise(latencies),
                            }
                        )
            for channel in channels.values():
                await channel.close()
        context.reset(token)
        await core.close()
        for (name, concurrency), runs in samples.items():
            results.append(
                {
                    "path": name,
                    "concurrency": concurrency,
                    "pairs_per_call": paths[name][1],
                    **{k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]},
                }
            )
    loop_seconds = machine_speed()
    print(
        json.dumps(
            {
                "customers": args.customers,
                "calls": args.calls,
                "batch": args.batch,
                "repeats": args.repeats,
                "cpus": os.cpu_count(),
                "python_10M_loop_s": loop_seconds,
                "results": results,
            },
            indent=2,
        )
    )


def cpu_of(pid: int) -> Callable[[], float]:
    return lambda: process_cpu_seconds(pid)


if __name__ == "__main__":
    asyncio.run(main())
