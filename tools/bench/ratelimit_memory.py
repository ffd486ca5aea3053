"""CPU per rate-limit hit of the `memory://` store with many live keys: the
`limits` library's async memory store (what `memory://` used before) against
`identity_runtime.ratelimit.MemoryWindows` (what it uses now), in one run.

    .venv/bin/python tools/bench/ratelimit_memory.py [--keys 10,100,1000] [--hits 2000]

Each key (a customer of one organisation) is hit once to make it live, then
`--hits` hits go to keys in turn, one at a time on one event loop, as an
RPC's interceptor would, spaced out as requests at a low rate are: the
library's expiry pass that a hit starts (a worker-thread hand-off per live
key) ends before the next hit. (Under concurrency several hits share one
pass.) Reported: CPU microseconds per hit (process time, which counts the
worker threads too). Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from common import ROOT, publish
from limits import RateLimitItemPerSecond
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from identity_runtime.ratelimit import RateLimitPolicy, RateLimits

POLICY = RateLimitPolicy(1_000_000, 60, "customer")
NAME = "identity.kyc.v1.KycTierService/StepUp"


async def library(keys: int, hits: int) -> float:
    storage = storage_from_string("async+memory://", wrap_exceptions=True, key_prefix="bench")
    limiter = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(POLICY.requests, POLICY.per_seconds, namespace=NAME)
    for index in range(keys):
        await limiter.hit(item, "org", "o1", "customer", f"c{index}")
    started = time.process_time()
    for index in range(hits):
        assert await limiter.hit(item, "org", "o1", "customer", f"c{index % keys}")
        # The expiry pass the hit scheduled runs before the next hit comes.
        timer = getattr(storage, "timer", None)
        if timer is not None:
            await timer
    elapsed = time.process_time() - started
    timer = getattr(storage, "timer", None)
    if timer is not None and not timer.done():
        timer.cancel()
    return elapsed * 1e6 / hits


async def windows(keys: int, hits: int) -> float:
    limits = RateLimits("memory://", "bench")
    for index in range(keys):
        await limits.hit(NAME, POLICY, ("org", "o1", "customer", f"c{index}"))
    started = time.process_time()
    for index in range(hits):
        await limits.hit(NAME, POLICY, ("org", "o1", "customer", f"c{index % keys}"))
    elapsed = time.process_time() - started
    await limits.close()
    return elapsed * 1e6 / hits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", default="10,100,1000")
    parser.add_argument("--hits", type=int, default=2000)
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    args = parser.parse_args()
    rows = []
    for keys in (int(k) for k in args.keys.split(",")):
        before = asyncio.run(library(keys, args.hits))
        after = asyncio.run(windows(keys, args.hits))
        rows.append({"keys": keys, "library_us": before, "windows_us": after})
        print(f"{keys:>6} keys: library {before:9.1f} us/hit, MemoryWindows {after:6.1f} us/hit")
    lines = [
        "| live keys | limits async memory store, CPU µs/hit | MemoryWindows, CPU µs/hit |",
        "|---:|---:|---:|",
        *(f"| {r['keys']} | {r['library_us']:.1f} | {r['windows_us']:.1f} |" for r in rows),
    ]
    from pathlib import Path

    publish(Path(args.out) / "ratelimit_memory.json", {"rows": rows}, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
