#!/usr/bin/env python3
"""Where the CPU of a gRPC Verify goes: cProfile over server and client in one process.

    .venv/bin/python tools/bench/verify_profile.py [--calls 2000] [--customers 200]
        [--template-cache-size 100000] [--batch 0] [--top 30]

Starts the real matching service in this process (port 0, scratch PostgreSQL
schema, tests' mesh keys), enrolls customers, warms up, then profiles
`--calls` Verify calls (or VerifyBatch calls of `--batch` pairs) made by a
client in the same event loop. The client's share (token minting, request
building) shows up under its own functions; read the server's under
identity_runtime.interceptors / authz / meshauth, grpc, services.matching.
Prints the top functions by own time and a few totals by area.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import time

import numpy as np
from common import MatchingCustomers, caller_metadata, matching_env, scratch_schema

from identity_platform_api.matching.v1 import matching_pb2, matching_pb2_grpc
from services.matching.service import SPEC as MATCHING
from tests.support import channel, start_service

# (file name, function name): the largest cumulative time of a match.
AREAS = {
    "server: whole interceptor stack": ("interceptors.py", "behaviour"),
    "server: servicer Verify": ("servicer.py", "Verify"),
    "server: servicer VerifyBatch": ("servicer.py", "VerifyBatch"),
    "token verify (server)": ("meshauth.py", "verify"),
    "token mint (client)": ("meshauth.py", "mint"),
    "auth interceptor": ("authz.py", "scope"),
    "access log line": ("_base.py", "_proxy_to_logger"),
    "request validation": ("validation.py", "validate"),
    "database read": ("db.py", "run"),
    "open template": ("enrollments.py", "open_row"),
    "engine.verify": ("engine.py", "verify"),
    "engine.verify_batch": ("engine.py", "verify_batch"),
}


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--template-cache-size", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=0, help="0 = single Verify calls")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(3)
    with scratch_schema() as url:
        server = await start_service(
            MATCHING,
            matching_env(url, MATCHING_TEMPLATE_CACHE_SIZE=str(args.template_cache_size)),
        )
        customers = MatchingCustomers.random(rng, args.customers)
        async with channel(server, credentials=False) as chan:
            stub = matching_pb2_grpc.MatchingServiceStub(chan)
            await customers.enrol(stub)

            async def one(i: int) -> None:
                if args.batch:
                    await stub.VerifyBatch(
                        matching_pb2.VerifyBatchRequest(
                            items=[
                                matching_pb2.VerifyBatchItem(
                                    customer_id=customers.customer_id(i + j),
                                    probe=customers.embedding(i + j),
                                )
                                for j in range(args.batch)
                            ]
                        ),
                        metadata=caller_metadata(customers.org_id),
                    )
                    return
                await customers.verify(stub, i)

            for i in range(len(customers.ids)):
                await one(i)
            profiler = cProfile.Profile()
            started = time.process_time()
            profiler.enable()
            for i in range(args.calls):
                await one(i)
            profiler.disable()
            cpu = time.process_time() - started
        await server.stop(0)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(args.top)
    print(out.getvalue())
    pairs = args.calls * max(1, args.batch)
    print(
        f"{args.calls} calls, {pairs} pairs, process CPU {cpu:.2f} s (client + server, "
        f"profiled): {cpu / pairs * 1e6:.0f} us a pair"
    )
    raw = stats.stats  # type: ignore[attr-defined]
    for area, (file, function) in AREAS.items():
        total = max(
            (
                cum
                for (path, _line, name), (_, _, _, cum, _) in raw.items()
                if path.endswith(file) and name == function
            ),
            default=0.0,
        )
        print(f"  {area:24s} {total / pairs * 1e6:7.0f} us a pair (cumulative)")


if __name__ == "__main__":
    asyncio.run(main())
