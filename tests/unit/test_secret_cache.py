"""The shared in-memory cache for secrets: every value that leaves it is
handed to `discard` (replaced, removed, cleared, or refused when disabled),
and its repr shows counts only."""

from __future__ import annotations

import pytest

from identity_crypto.memory_cache import SecretCache

pytestmark = pytest.mark.unit


def test_every_value_that_leaves_is_discarded() -> None:
    discarded: list[bytearray] = []
    cache: SecretCache[str, bytearray] = SecretCache(10, 60, discard=discarded.append)
    first, second, third = bytearray(b"k1"), bytearray(b"k2"), bytearray(b"k3")
    cache.put("a", first)
    cache.put("a", second)  # replaces: the old value leaves
    cache.put("b", third)
    assert discarded == [first] and cache.get("a") is second
    cache.remove(["a", "unknown"])
    assert discarded == [first, second] and cache.get("a") is None
    cache.clear()
    assert discarded == [first, second, third] and len(cache) == 0


@pytest.mark.parametrize(("capacity", "ttl"), [(0, 60), (10, 0)])
def test_a_disabled_cache_keeps_nothing_and_discards_what_it_is_given(
    capacity: int, ttl: float
) -> None:
    discarded: list[bytearray] = []
    cache: SecretCache[str, bytearray] = SecretCache(capacity, ttl, discard=discarded.append)
    value = bytearray(b"secret")
    cache.put("a", value)
    assert cache.get("a") is None and discarded == [value] and not cache.enabled


def test_repr_shows_counts_never_keys_or_values() -> None:
    cache: SecretCache[str, bytes] = SecretCache(2, 60)
    cache.put("org_1/cus_secret", b"material")
    assert repr(cache) == "SecretCache(entries=1, capacity=2)"
