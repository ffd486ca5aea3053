#!/usr/bin/env python3
"""1:1 verify throughput of the matching service: in-process vs through gRPC.

    .venv/bin/python tools/bench/verify_throughput.py [--customers 1000] [--calls 3000]

Sets up a scratch PostgreSQL schema with one organisation and N enrolled
customers (SFace contract, 128-d, sealed fp16 templates), then runs
Verify(probe, customer_id) - one database transaction reading the active
reference and its wrapped data key, unwrap (cache), AES-GCM open, cosine,
FMR estimate - in two ways, side by side in one run:

  in-process  MatchingEngine.verify called from this process's event loop
  gRPC        the real service (`python -m services.matching`) pinned to one
              CPU with taskset, called by this process over loopback

each with 1 and with 8 concurrent callers. "per core" is calls per CPU
second of the matching process (utime+stime from /proc), which is what one
core of matching sustains; PostgreSQL's own CPU is not included in it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

import grpc
import numpy as np
from common import machine_speed, process_cpu_seconds, scratch_schema, service_process, summarise

from identity_crypto.keyring import generate
from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.matching.v1 import matching_pb2, matching_pb2_grpc
from identity_runtime import context
from identity_runtime.settings import load_settings
from services.matching.bootstrap import build
from services.matching.contract import EmbeddingContract
from services.matching.engine import EmbeddingInput
from services.matching.settings import MatchingSettings
from tests.support.meshauth import caller_metadata

CONTRACT = EmbeddingContract("sface-2021dec", "", 128)


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 128)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


async def run_calls(
    call, probes, customers, calls: int, concurrency: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(calls))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            await call(probes[i % len(probes)], customers[i % len(customers)])
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument(
        "--server-cpu", type=int, default=0, help="CPU the gRPC server is pinned to"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="interleaved rounds; medians are reported"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    keyring = generate("kek-bench")
    results = []
    with scratch_schema() as url:
        env = {
            "MATCHING_DATABASE_URL": url,
            "MATCHING_KEK_KEYRING": keyring.to_json(),
            "MATCHING_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
            "MATCHING_SYNC_INTERVAL_SECONDS": "3600",
        }
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

        async def in_process(probe, customer_id):
            await core.engine.verify(
                "org_bench", EmbeddingInput(CONTRACT, probe), customer_id, None
            )

        with service_process("services.matching", env, cpu=args.server_cpu) as (address, pid):
            async with grpc.aio.insecure_channel(address) as channel:
                stub = matching_pb2_grpc.MatchingServiceStub(channel)
                contract = types_pb2.EmbeddingContract(model_id="sface-2021dec", dimension=128)

                async def through_grpc(probe, customer_id):
                    await stub.Verify(
                        matching_pb2.VerifyRequest(
                            probe=types_pb2.Embedding(contract=contract, values=probe),
                            customer_id=customer_id,
                        ),
                        metadata=caller_metadata("org_bench"),
                    )

                paths = {
                    "in-process": (in_process, lambda: time.process_time()),
                    "gRPC": (through_grpc, lambda: process_cpu_seconds(pid)),
                }
                samples: dict[tuple[str, int], list[dict]] = {}
                for _ in range(args.repeats):
                    # Interleaved, so background load on the shared machine hits every path alike.
                    for name, (call, cpu_clock) in paths.items():
                        for concurrency in (1, 8):
                            await run_calls(call, probes, customers, 100, concurrency)  # warm-up
                            cpu_before = cpu_clock()
                            wall, latencies = await run_calls(
                                call, probes, customers, args.calls, concurrency
                            )
                            cpu = cpu_clock() - cpu_before
                            samples.setdefault((name, concurrency), []).append(
                                {
                                    "calls_per_s": args.calls / wall,
                                    "calls_per_cpu_s": args.calls / cpu,
                                    **summarise(latencies),
                                }
                            )
        context.reset(token)
        await core.close()
        for (name, concurrency), runs in samples.items():
            results.append(
                {
                    "path": name,
                    "concurrency": concurrency,
                    **{k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]},
                }
            )
    loop_seconds = machine_speed()
    print(
        json.dumps(
            {
                "customers": args.customers,
                "calls": args.calls,
                "repeats": args.repeats,
                "cpus": os.cpu_count(),
                "python_10M_loop_s": loop_seconds,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
