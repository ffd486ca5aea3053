#!/usr/bin/env python3
"""Where the matching server's CPU goes per call: the real server process
under cProfile, driven over loopback by a client in this process.

    .venv/bin/python tools/bench/rpc_profile.py [--rpc floor|verify] [--calls 3000] [--top 40]

Starts `python -m cProfile -o <file> -m services.matching` (port 0, scratch
PostgreSQL schema, the tests' mesh keys), enrolls a few customers, warms up,
makes `--calls` calls of DescribeThreshold (`floor`: no database, no
template) or Verify, stops the server with SIGTERM (it drains and exits, so
cProfile writes its file) and prints the server's top functions by own time.
The profile covers the whole server life (start-up included); the per-call
columns are what to read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np
from common import (
    ROOT,
    MatchingCustomers,
    caller_metadata,
    matching_env,
    scratch_schema,
)

from identity_platform_api.matching.v1 import matching_pb2, matching_pb2_grpc
from tests.support.meshauth import service_env


async def drive(address: str, rpc: str, calls: int) -> None:
    customers = MatchingCustomers.random(np.random.default_rng(5), 50)
    async with grpc.aio.insecure_channel(address) as chan:
        stub = matching_pb2_grpc.MatchingServiceStub(chan)
        await customers.enrol(stub)

        async def one(i: int) -> None:
            if rpc == "floor":
                await stub.DescribeThreshold(
                    matching_pb2.DescribeThresholdRequest(),
                    metadata=caller_metadata(customers.org_id),
                )
                return
            await customers.verify(stub, i)

        for i in range(200):
            await one(i)
        for i in range(calls):
            await one(i)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rpc", choices=("floor", "verify"), default="floor")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    profile = Path(tempfile.mkdtemp()) / "server.prof"
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    with scratch_schema() as url:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            **service_env("MATCHING"),
            **matching_env(url),
        }
        command = [sys.executable, "-m", "cProfile", "-o", str(profile)]
        process = subprocess.Popen(
            [*command, "-m", "services.matching"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            address = None
            deadline = time.monotonic() + 300
            while address is None:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(Path(log.name).read_text()[-2000:])
                match = re.search(r"listening on (\S+:\d+)", Path(log.name).read_text())
                address = match.group(1) if match else None
                time.sleep(0.2)
            asyncio.run(drive(address, args.rpc, args.calls))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
            os.unlink(log.name)
    stats = pstats.Stats(str(profile))
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
