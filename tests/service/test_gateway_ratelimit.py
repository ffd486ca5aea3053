"""Rate limits from the contracts: 429 with Retry-After, per customer and per org,
and one limit shared by several gateway instances through Redis."""

from __future__ import annotations

import os
import uuid

import pytest
import redis
from prometheus_client import REGISTRY

from identity_cli.schema import migrate_all
from identity_runtime import mesh
from tests.support import kyc_tier_env, start_service, unavailable
from tests.support.gateway import (
    assert_error,
    bearer,
    create_org_and_key,
    gateway_client,
    gateway_settings,
    spec_of,
)

REDIS_URL = os.environ.get("IDENTITY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CAPTURE = "/api/identity/document/ktp/capture"  # 5 per minute per customer


def capture(customer: str) -> dict[str, object]:
    """A capture the contract's field rules accept, for a customer kyc-tier
    does not know: within the limit it reaches kyc-tier (404), past it the
    gateway answers 429."""
    return {
        "customerId": customer,
        "challengeId": "chl_ratelimit",
        "bundle": {
            "frames": [{"image": {"data": "AAAA"}}],
            "attestation": {
                "deviceId": "device-1",
                "nonce": uuid.uuid4().hex,
                "bundleSha256": "0" * 64,
                "signature": "AAAA",
                "capturedAt": "2026-01-01T00:00:00Z",
            },
        },
    }


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('gateway-ratelimit') / 'identity.db'}"
    migrate_all(url)
    return url


@pytest.fixture(scope="module")
async def kyc_tier(database: str):
    server = await start_service(spec_of(mesh.KYC_TIER), kyc_tier_env(database))
    yield server
    await server.stop(0)


@pytest.fixture(scope="module")
def partner(database: str) -> tuple[str, str, str]:
    return create_org_and_key(database, "Limited Org", ("public",))


@pytest.fixture
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL}", str(exc))
    return REDIS_URL


async def test_a_per_customer_limit_answers_429_with_retry_after(kyc_tier, partner) -> None:
    customer = f"cus_{uuid.uuid4().hex}"
    async with gateway_client(gateway_settings({"kyc_tier": kyc_tier.address})) as client:
        headers = bearer(partner[2])
        for _ in range(5):
            response = await client.post(CAPTURE, json=capture(customer), headers=headers)
            # Within the limit the request reaches kyc-tier, which does not
            # know the customer.
            assert_error(response, 404, "CUSTOMER_NOT_FOUND")
        response = await client.post(CAPTURE, json=capture(customer), headers=headers)
        error = assert_error(response, 429, "RATE_LIMITED")
        assert error["status"] == "RESOURCE_EXHAUSTED"
        retry_after = int(response.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert error["metadata"] == {
            "retry_after_seconds": str(retry_after),
            "limit": "5 per minute per customer",
        }
        # Another customer of the same organisation has a budget of its own.
        response = await client.post(
            CAPTURE, json=capture(f"cus_{uuid.uuid4().hex}"), headers=headers
        )
        assert_error(response, 404, "CUSTOMER_NOT_FOUND")


async def test_a_per_org_limit_counts_every_customer_of_the_org(kyc_tier, database) -> None:
    _, _, secret = create_org_and_key(database, f"Erasing Org {uuid.uuid4().hex[:6]}", ("public",))
    async with gateway_client(gateway_settings({"kyc_tier": kyc_tier.address})) as client:
        for index in range(30):
            response = await client.post(
                f"/api/identity/customers/cus_{index}/erase", json={}, headers=bearer(secret)
            )
            assert_error(response, 404, "CUSTOMER_NOT_FOUND")
        response = await client.post(
            "/api/identity/customers/cus_other/erase", json={}, headers=bearer(secret)
        )
        error = assert_error(response, 429, "RATE_LIMITED")
        assert error["metadata"]["limit"] == "30 per 300 seconds per org"
        assert 1 <= int(response.headers["retry-after"]) <= 300


async def test_requests_refused_before_the_limit_is_counted_do_not_spend_it(
    kyc_tier, partner
) -> None:
    customer = f"cus_{uuid.uuid4().hex}"
    async with gateway_client(gateway_settings({"kyc_tier": kyc_tier.address})) as client:
        for _ in range(7):
            response = await client.post(
                CAPTURE, json={"customerId": customer, "unknown": 1}, headers=bearer(partner[2])
            )
            assert_error(response, 400, "MALFORMED_REQUEST")
        response = await client.post(
            CAPTURE, json={"customerId": customer}, headers=bearer(partner[2])
        )
        assert_error(response, 400, "INVALID_FIELD")


def refused_by_kyc_tier() -> float:
    """Captures kyc-tier itself refused as RESOURCE_EXHAUSTED (its own count)."""
    sample = REGISTRY.get_sample_value(
        "identity_rpc_requests_total",
        {
            "service": "kyc-tier",
            "rpc": "identity.kyc_tier.v1.KtpService/SubmitKtpCapture",
            "code": "RESOURCE_EXHAUSTED",
        },
    )
    return sample or 0.0


async def test_two_gateways_sharing_redis_enforce_one_limit(kyc_tier, partner, redis_url) -> None:
    customer = f"cus_{uuid.uuid4().hex}"
    prefix = f"identity-gateway-test-{uuid.uuid4().hex[:8]}"
    shared = gateway_settings(
        {"kyc_tier": kyc_tier.address}, rate_limit_storage=redis_url, rate_limit_key_prefix=prefix
    )
    before = refused_by_kyc_tier()
    async with gateway_client(shared) as first, gateway_client(shared) as second:
        assert first.gateway is not second.gateway
        statuses = []
        for index in range(8):
            client = first if index % 2 == 0 else second
            response = await client.post(
                CAPTURE, json=capture(customer), headers=bearer(partner[2])
            )
            statuses.append(response.status_code)
        assert statuses == [404] * 5 + [429] * 3
        assert int(response.headers["retry-after"]) >= 1
    # Refused at the edge: the three never reached kyc-tier.
    assert refused_by_kyc_tier() == before
    # Each in its own memory, the gateways alone would let the same traffic
    # pass twice as often: kyc-tier's own count (identity_runtime.ratelimit)
    # is what still holds the limit then.
    other = f"cus_{uuid.uuid4().hex}"
    local = gateway_settings({"kyc_tier": kyc_tier.address})
    async with gateway_client(local) as first, gateway_client(local) as second:
        statuses = []
        for index in range(8):
            client = first if index % 2 == 0 else second
            response = await client.post(CAPTURE, json=capture(other), headers=bearer(partner[2]))
            statuses.append(response.status_code)
        assert statuses == [404] * 5 + [429] * 3
        assert_error(response, 429, "RATE_LIMITED")
    assert refused_by_kyc_tier() == before + 3


async def test_an_unreachable_store_fails_closed_with_503(kyc_tier, partner) -> None:
    settings = gateway_settings(
        {"kyc_tier": kyc_tier.address}, rate_limit_storage="redis://127.0.0.1:1/0"
    )
    async with gateway_client(settings) as client:
        response = await client.post(CAPTURE, json=capture("cus_1"), headers=bearer(partner[2]))
        error = assert_error(response, 503, "DEPENDENCY_UNAVAILABLE")
        assert error["metadata"] == {"service": "rate-limit-store"}
        # Routes without a limit do not touch the store.
        response = await client.get("/api/identity/customers/cus_1", headers=bearer(partner[2]))
        assert_error(response, 404, "CUSTOMER_NOT_FOUND")


LOGIN = "/api/auth/login"  # 30 per minute per client address


async def wrong_logins(client, count: int, **headers: str) -> list[int]:
    """Sign-ins with a new unknown email each (the per-email backoff never
    applies) from one address."""
    statuses = []
    for _ in range(count):
        body = {"email": f"{uuid.uuid4().hex[:10]}@bank.example", "password": "not the one 123"}
        response = await client.post(LOGIN, json=body, headers=headers)
        statuses.append(response.status_code)
    return statuses


async def test_console_sign_in_is_throttled_per_client_address_across_gateways(
    kyc_tier, redis_url
) -> None:
    prefix = f"identity-gateway-test-{uuid.uuid4().hex[:8]}"
    # The test client's peer (127.0.0.1) is the trusted proxy: the address
    # counted is the one it forwards.
    shared = gateway_settings(
        {"kyc_tier": kyc_tier.address},
        rate_limit_storage=redis_url,
        rate_limit_key_prefix=prefix,
        trusted_proxies="127.0.0.0/8",
    )
    async with gateway_client(shared) as first, gateway_client(shared) as second:
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        assert await wrong_logins(first, 20, **attacker) == [401] * 20
        # The other replica counts in the same Redis.
        assert await wrong_logins(second, 10, **attacker) == [401] * 10
        response = await second.post(
            LOGIN, json={"email": "a@bank.example", "password": "x" * 12}, headers=attacker
        )
        error = assert_error(response, 429, "RATE_LIMITED")
        assert error["metadata"]["limit"] == "30 per minute per ip"
        assert 1 <= int(response.headers["retry-after"]) <= 60
        # A client-supplied entry left of the proxy's is not trusted: still the attacker.
        spoofed = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
        assert await wrong_logins(first, 1, **spoofed) == [429]
        # Another address (and another /64 for IPv6) has its own budget.
        assert await wrong_logins(first, 1, **{"X-Forwarded-For": "203.0.113.10"}) == [401]
        assert await wrong_logins(first, 1, **{"X-Forwarded-For": "2001:db8::1"}) == [401]


async def test_without_trusted_proxies_the_peer_is_the_address(kyc_tier) -> None:
    async with gateway_client(gateway_settings({"kyc_tier": kyc_tier.address})) as client:
        # X-Forwarded-For from an untrusted peer changes nothing: every
        # attempt counts against the peer.
        statuses = []
        for index in range(31):
            statuses += await wrong_logins(client, 1, **{"X-Forwarded-For": f"192.0.2.{index}"})
        assert statuses == [401] * 30 + [429]


async def test_review_portraits_are_rate_limited_per_organisation(kyc_tier, database) -> None:
    _, _, secret = create_org_and_key(
        database, f"Portrait Org {uuid.uuid4().hex[:6]}", ("internal",)
    )
    async with gateway_client(gateway_settings({"kyc_tier": kyc_tier.address})) as client:
        for index in range(300):
            response = await client.get(
                f"/api/identity/review-queue/rev_{index}/portraits/cus_x", headers=bearer(secret)
            )
            assert response.status_code == 404, response.text
        response = await client.get(
            "/api/identity/review-queue/rev_x/portraits/cus_x", headers=bearer(secret)
        )
        error = assert_error(response, 429, "RATE_LIMITED")
        assert error["metadata"]["limit"] == "300 per minute per org"
