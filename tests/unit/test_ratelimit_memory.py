"""memory:// rate limits: the moving window of one process (MemoryWindows),
counted as the `limits` library's moving window counts, on a fixed clock."""

from __future__ import annotations

import asyncio

import pytest

from identity_runtime.ratelimit import MemoryWindows, RateLimited, RateLimitPolicy, RateLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_gets_limit_hits_per_window_and_the_next_after_the_oldest_leaves() -> None:
    clock = Clock()
    windows = MemoryWindows(clock)
    for _ in range(3):
        assert windows.hit("k", 3, 60)
        clock.now += 10
    assert not windows.hit("k", 3, 60)
    # The first hit was at 1000: it is in the window until 1060 included.
    assert windows.reset_time("k", 60) == 1_060.0
    clock.now = 1_060.0
    assert not windows.hit("k", 3, 60)
    clock.now = 1_060.5
    assert windows.hit("k", 3, 60)
    assert not windows.hit("k", 3, 60)


def test_a_refused_hit_is_not_counted() -> None:
    clock = Clock()
    windows = MemoryWindows(clock)
    assert windows.hit("k", 1, 10)
    for _ in range(5):
        clock.now += 1
        assert not windows.hit("k", 1, 10)
    clock.now = 1_010.5  # ten seconds after the one counted hit, not after the refusals
    assert windows.hit("k", 1, 10)


def test_keys_count_apart() -> None:
    windows = MemoryWindows(Clock())
    assert windows.hit("customer-a", 1, 60)
    assert not windows.hit("customer-a", 1, 60)
    assert windows.hit("customer-b", 1, 60)


def test_keys_whose_window_is_empty_are_forgotten() -> None:
    clock = Clock()
    windows = MemoryWindows(clock)
    for index in range(100):
        windows.hit(f"customer-{index}", 5, 60)
    windows.hit("long", 5, 3_600)
    assert len(windows) == 101
    clock.now += 61
    windows.hit("other", 5, 60)
    assert len(windows) == 2  # "long" is still in its window; "other" was just hit


def test_rate_limits_over_memory_refuse_with_the_time_until_the_oldest_hit_leaves() -> None:
    limits = RateLimits("memory://", "test")
    policy = RateLimitPolicy(2, 60, "customer")

    async def scenario() -> float:
        await limits.check_store()
        await limits.hit("pkg.Svc/Call", policy, ("org", "o1", "customer", "c1"))
        await limits.hit("pkg.Svc/Call", policy, ("org", "o1", "customer", "c1"))
        await limits.hit("pkg.Svc/Call", policy, ("org", "o1", "customer", "c2"))
        await limits.hit("pkg.Svc/Other", policy, ("org", "o1", "customer", "c1"))
        with pytest.raises(RateLimited) as refused:
            await limits.hit("pkg.Svc/Call", policy, ("org", "o1", "customer", "c1"))
        await limits.close()
        return refused.value.retry_after_seconds

    assert asyncio.run(scenario()) == 60
