"""The API-key cache and scope rules (the real kyc-tier lookup is in test_gateway_mesh)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from gateway import errors
from gateway.auth import ApiKeyCache, Principal, authorize, presented_key
from identity_runtime.errors import Unauthenticated, Unavailable
from tests.support.gateway import assert_error, bearer, gateway_client, gateway_settings

KEY_A = "idk_" + "a" * 32
KEY_B = "idk_" + "b" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Directory:
    """Resolves keys like kyc-tier does: known keys to a principal, others refused."""

    def __init__(self, known: dict[str, Principal], delay: float = 0.0):
        self.known = known
        self.delay = delay
        self.calls = 0
        self.down = False

    async def resolve(self, key: str) -> Principal:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise Unavailable("kyc-tier is down", "DEPENDENCY_UNAVAILABLE")
        if key not in self.known:
            raise Unauthenticated("the API key is unknown or revoked", "API_KEY_INVALID")
        return self.known[key]


PRINCIPAL = Principal("org_1", "key_1", frozenset({"public"}))


async def test_answers_are_cached_until_the_ttl_passes() -> None:
    clock, directory = Clock(), Directory({KEY_A: PRINCIPAL})
    cache = ApiKeyCache(directory.resolve, ttl_seconds=30, max_entries=10, clock=clock)
    assert await cache.authenticate(KEY_A) == PRINCIPAL
    assert await cache.authenticate(KEY_A) == PRINCIPAL
    assert directory.calls == 1
    clock.now += 31
    assert await cache.authenticate(KEY_A) == PRINCIPAL
    assert directory.calls == 2


async def test_unknown_keys_are_remembered_but_outages_are_not() -> None:
    directory = Directory({})
    cache = ApiKeyCache(directory.resolve, ttl_seconds=30, max_entries=10, clock=Clock())
    for _ in range(3):
        with pytest.raises(errors.GatewayError) as caught:
            await cache.authenticate(KEY_A)
        assert (caught.value.code, caught.value.reason) == ("UNAUTHENTICATED", "API_KEY_INVALID")
    assert directory.calls == 1
    directory.down = True
    for _ in range(2):
        with pytest.raises(Unavailable):
            await cache.authenticate(KEY_B)
    assert directory.calls == 3


async def test_the_cache_is_bounded_and_keyed_by_digest() -> None:
    directory = Directory({f"idk_{i:032d}": PRINCIPAL for i in range(5)})
    cache = ApiKeyCache(directory.resolve, ttl_seconds=30, max_entries=3, clock=Clock())
    for i in range(5):
        await cache.authenticate(f"idk_{i:032d}")
    assert len(cache) == 3
    for digest in cache._entries:
        assert b"idk_" not in digest and len(digest) == 32
    await cache.authenticate("idk_" + "4".zfill(32))  # most recent: still cached
    assert directory.calls == 5
    await cache.authenticate("idk_" + "0".zfill(32))  # evicted first
    assert directory.calls == 6


async def test_concurrent_requests_with_one_key_share_one_lookup() -> None:
    directory = Directory({KEY_A: PRINCIPAL}, delay=0.05)
    cache = ApiKeyCache(directory.resolve, ttl_seconds=30, max_entries=10)
    results = await asyncio.gather(*(cache.authenticate(KEY_A) for _ in range(10)))
    assert results == [PRINCIPAL] * 10
    assert directory.calls == 1


async def test_a_zero_ttl_disables_the_cache() -> None:
    directory = Directory({KEY_A: PRINCIPAL})
    cache = ApiKeyCache(directory.resolve, ttl_seconds=0, max_entries=10)
    await cache.authenticate(KEY_A)
    await cache.authenticate(KEY_A)
    assert directory.calls == 2 and len(cache) == 0


class Revocations:
    """The revocation epoch as kyc-tier answers it."""

    def __init__(self) -> None:
        self.epoch = 0
        self.down = False

    async def __call__(self) -> int:
        if self.down:
            raise Unavailable("kyc-tier is down", "DEPENDENCY_UNAVAILABLE")
        return self.epoch


async def test_a_revocation_drops_cached_keys_within_the_check_interval() -> None:
    clock, directory, revocations = Clock(), Directory({KEY_A: PRINCIPAL}), Revocations()
    cache = ApiKeyCache(
        directory.resolve,
        ttl_seconds=30,
        max_entries=10,
        clock=clock,
        revocations=revocations,
        revocation_check_seconds=1.0,
    )
    assert await cache.authenticate(KEY_A) == PRINCIPAL
    clock.now += 0.5
    assert await cache.authenticate(KEY_A) == PRINCIPAL
    assert (directory.calls, cache.epoch_checks) == (1, 1)
    # The key is revoked: kyc-tier refuses it and the epoch moves.
    del directory.known[KEY_A]
    revocations.epoch += 1
    clock.now += 0.49  # 0.99 s after the last check: still trusted
    assert await cache.authenticate(KEY_A) == PRINCIPAL
    clock.now += 0.01  # 1 s after the last check: the epoch is asked, the entry dropped
    with pytest.raises(errors.GatewayError) as refused:
        await cache.authenticate(KEY_A)
    assert refused.value.reason == "API_KEY_INVALID"
    assert (directory.calls, cache.epoch_checks) == (2, 2)


async def test_an_unchanged_epoch_keeps_the_cache_and_an_outage_keeps_it_too() -> None:
    clock, directory, revocations = Clock(), Directory({KEY_A: PRINCIPAL}), Revocations()
    cache = ApiKeyCache(
        directory.resolve, 30, 10, clock=clock, revocations=revocations, revocation_check_seconds=1
    )
    for _ in range(3):
        assert await cache.authenticate(KEY_A) == PRINCIPAL
        clock.now += 2
    assert (directory.calls, cache.epoch_checks) == (1, 3)
    revocations.down = True
    assert await cache.authenticate(KEY_A) == PRINCIPAL
    assert directory.calls == 1


def test_presented_key_rules() -> None:
    assert presented_key({}, [f"Bearer {KEY_A}"], []) == KEY_A
    assert presented_key({}, [f"bearer  {KEY_A} "], [KEY_A]) == KEY_A
    assert presented_key({}, [], [KEY_A]) == KEY_A
    cases = {
        ((), ()): "API_KEY_MISSING",
        ((f"Bearer {KEY_A}",), (KEY_B,)): "API_KEY_INVALID",
        ((f"Bearer {KEY_A}", f"Bearer {KEY_A}"), ()): "API_KEY_INVALID",
        (("Bearer",), ()): "API_KEY_INVALID",
        ((), ("sk_live_123",)): "API_KEY_INVALID",
        ((), ("idk_" + "x" * 200,)): "API_KEY_INVALID",
    }
    for (authorization, api_keys), reason in cases.items():
        with pytest.raises(errors.GatewayError) as caught:
            presented_key({}, list(authorization), list(api_keys))
        assert caught.value.reason == reason, (authorization, api_keys)
        assert KEY_A not in caught.value.message


def test_scope_rules() -> None:
    public = Principal("o", "k", frozenset({"public"}))
    internal = Principal("o", "k", frozenset({"internal"}))
    none = Principal("o", "k", frozenset())
    authorize("public", public)
    authorize("public", internal)
    authorize("internal", internal)
    authorize("anonymous", none)
    for scope, principal in (("internal", public), ("public", none)):
        with pytest.raises(errors.GatewayError) as caught:
            authorize(scope, principal)
        assert (errors.http_status(caught.value), caught.value.reason) == (
            403,
            "SCOPE_INSUFFICIENT",
        )


async def test_an_unreachable_key_directory_is_503_not_401() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    async with gateway_client(gateway_settings({"kyc_tier": dead})) as client:
        response = await client.get("/api/customers", headers=bearer(KEY_A))
    error = assert_error(response, 503, "DEPENDENCY_UNAVAILABLE")
    assert error["metadata"] == {"service": "kyc-tier"}
    assert dead not in response.text and "ipv4" not in response.text
    assert int(response.headers["Retry-After"]) >= 1
