"""The opened-template cache alone: bounded (LRU), expiring, wiped when an
entry leaves, a read racing an invalidation is not put back, never shows a
vector in its repr. Time is the cache's clock, moved by the test."""

from __future__ import annotations

import numpy as np
import pytest

from identity_crypto import memory_cache
from services.matching.opened import OpenedReference, OpenedTemplates

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(memory_cache.time, "monotonic", fake)
    return fake


def ref(value: float) -> OpenedReference:
    return OpenedReference("enr_1", "dukcapil", np.full(4, value, dtype=np.float32))


def test_least_recently_used_entries_leave_first_and_are_wiped(clock: Clock) -> None:
    cache = OpenedTemplates(capacity=2, ttl_seconds=60)
    for customer, value in (("a", 1.0), ("b", 2.0)):
        cache.put("org", customer, ref(value), cache.ticket())
    a = cache.get("org", "a")  # a is now the most recent
    assert a is not None
    b = cache.get("org", "b")
    cache.get("org", "a")
    cache.put("org", "c", ref(3.0), cache.ticket())
    assert cache.get("org", "b") is None and len(cache) == 2
    assert b is not None and not np.any(b.vector)  # the evicted copy was overwritten
    assert cache.get("org", "a") is a and a.vector[0] == 1.0


def test_entries_expire_and_are_wiped(clock: Clock) -> None:
    cache = OpenedTemplates(capacity=10, ttl_seconds=60)
    cache.put("org", "a", ref(1.0), cache.ticket())
    kept = cache.get("org", "a")
    clock.now += 59
    assert cache.get("org", "a") is kept
    clock.now += 2
    assert cache.get("org", "a") is None
    assert kept is not None and not np.any(kept.vector)


def test_the_cache_keeps_its_own_copy() -> None:
    cache = OpenedTemplates(capacity=10, ttl_seconds=60)
    mine = ref(1.0)
    cache.put("org", "a", mine, cache.ticket())
    cache.invalidate("org", ["a"])
    assert mine.vector[0] == 1.0  # the caller's array is not wiped under it


def test_a_read_that_raced_an_invalidation_is_not_put_back() -> None:
    cache = OpenedTemplates(capacity=10, ttl_seconds=60)
    ticket = cache.ticket()  # a verification starts reading the database
    cache.invalidate("org", ["a"])  # meanwhile the customer is erased
    cache.put("org", "a", ref(1.0), ticket)
    assert cache.get("org", "a") is None
    cache.put("org", "a", ref(1.0), cache.ticket())
    assert cache.get("org", "a") is not None


def test_invalidation_is_per_organisation_and_customer_and_clear_drops_all() -> None:
    cache = OpenedTemplates(capacity=10, ttl_seconds=60)
    for org, customer in (("org_a", "c1"), ("org_a", "c2"), ("org_b", "c1")):
        cache.put(org, customer, ref(1.0), cache.ticket())
    cache.invalidate("org_a", {"c1"})
    assert cache.get("org_a", "c1") is None
    assert cache.get("org_a", "c2") is not None and cache.get("org_b", "c1") is not None
    cache.clear()
    assert len(cache) == 0


@pytest.mark.parametrize(("capacity", "ttl"), [(0, 60.0), (10, 0.0)])
def test_a_zero_size_or_lifetime_disables_the_cache(capacity: int, ttl: float) -> None:
    cache = OpenedTemplates(capacity=capacity, ttl_seconds=ttl)
    cache.put("org", "a", ref(1.0), cache.ticket())
    assert cache.get("org", "a") is None and len(cache) == 0


def test_repr_shows_counts_never_vectors() -> None:
    cache = OpenedTemplates(capacity=10, ttl_seconds=60)
    cache.put("org", "cus_secret", ref(0.123), cache.ticket())
    shown = repr(cache) + repr(cache.get("org", "cus_secret"))
    assert "0.123" not in shown and "cus_secret" not in shown
    assert "entries=1" in shown
