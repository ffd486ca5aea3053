"""A customer's capture devices through the real gateway, on both databases:
kyc-tier (fake model ports) and the real liveness service (no PAD) on port 0.
A partner lists the customer's devices and revokes a lost one's key; from then
on a capture it signs is refused, and its id is not registered again."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from identity_capture.sdk import SdkSigner
from identity_platform_client import ApiError, IdentityClient
from services.kyc_tier import models
from services.kyc_tier.bootstrap import build
from services.kyc_tier.service import SPEC as KYC_TIER
from services.liveness.service import SPEC as LIVENESS
from tests.service.test_gateway_sdk_sessions import NIK, Partner, as_browser, rows_of
from tests.service.test_kyc_idempotency import GOOD_CARD
from tests.support import kyc_tier_env, start_service, unique_name
from tests.support.capture import bundle
from tests.support.gateway import (
    assert_documented,
    assert_error,
    create_org_and_key,
    gateway_client,
    gateway_settings,
)
from tests.support.kyc_fakes import KycFakes, assert_acceptable_to_audit
from tests.support.mesh import module_database

KTP_ROUTE = "/api/identity/document/ktp/capture"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    yield from module_database(request.param, tmp_path_factory.mktemp("devices"))


@pytest.fixture(scope="module")
async def liveness(database_url: str):
    env = {"LIVENESS_DATABASE_URL": database_url, "LIVENESS_PAD_ENABLED": "false"}
    server = await start_service(LIVENESS, env)
    yield server
    await server.stop(0)


@pytest.fixture(scope="module")
async def kyc_tier(database_url: str, liveness: Any):
    """kyc-tier with fake models, and the real liveness service for devices and captures."""
    fakes = KycFakes()
    fakes.quality.ktp = GOOD_CARD

    async def build_with_real_liveness(settings: Any) -> Any:
        return await build(
            settings, overrides=dataclasses.replace(fakes.overrides(), liveness=None)
        )

    server = await start_service(
        dataclasses.replace(KYC_TIER, build=build_with_real_liveness),
        kyc_tier_env(database_url, {"liveness": liveness.address}),
    )
    yield server
    await server.stop(0)


async def new_partner(database_url: str, http: Any, core: Any) -> Partner:
    org_id, _, secret = await asyncio.to_thread(
        create_org_and_key, database_url, unique_name("Bank"), ("public",)
    )
    return Partner(http, secret, org_id, core)


@pytest.fixture(scope="module")
async def partners(database_url: str, kyc_tier: Any):
    """Two organisations' backends (public keys only) on one gateway."""
    async with gateway_client(gateway_settings({"kyc_tier": kyc_tier.address})) as http:
        yield tuple([await new_partner(database_url, http, kyc_tier.core) for _ in "ab"])


@pytest.fixture
def partner(partners: tuple[Partner, Partner]) -> Partner:
    return partners[0]


def devices_path(customer_id: str) -> str:
    return f"/api/identity/customers/{customer_id}/devices"


def revoke_path(customer_id: str, device_id: str) -> str:
    return f"{devices_path(customer_id)}/{device_id}/revoke"


async def register(partner: Partner, customer_id: str, signer: SdkSigner) -> Any:
    return await partner.call(
        "POST",
        "/api/identity/devices/register",
        {
            "customerId": customer_id,
            "deviceId": signer.device_id,
            "algorithm": "KEY_ALGORITHM_ECDSA_P256_SHA256",
            "publicKeyPem": signer.public_key_pem().decode(),
            "platform": "android",
        },
    )


async def device(partner: Partner, customer_id: str) -> SdkSigner:
    """A new device of the customer, registered."""
    signer = SdkSigner()
    registered = await register(partner, customer_id, signer)
    assert registered.status_code == 200, registered.text
    return signer


async def listed(partner: Partner, customer_id: str) -> list[dict[str, Any]]:
    answer = await partner.call("GET", devices_path(customer_id))
    assert answer.status_code == 200, answer.text
    return list(answer.json().get("devices", []))


async def card_capture(partner: Partner, customer_id: str, signer: SdkSigner) -> Any:
    """A KTP capture signed with the device's key, answering a fresh challenge."""
    issued = await partner.call(
        "POST", "/api/identity/document/ktp/challenge", {"customerId": customer_id}
    )
    assert issued.status_code == 200, issued.text
    challenge = issued.json()["challenge"]
    body = {
        "customerId": customer_id,
        "challengeId": challenge["challengeId"],
        "bundle": bundle(signer, challenge, [b"flash-0"], baseline=b"card"),
        "ocrFields": {"nik": NIK},
    }
    return await partner.call("POST", KTP_ROUTE, body)


async def revocations(partner: Partner, customer_id: str) -> list[models.AuditOutbox]:
    return await rows_of(
        partner, models.AuditOutbox, action="device.revoke", subject=f"customer:{customer_id}"
    )


async def test_a_partner_lists_a_customers_devices_and_revokes_one(partner) -> None:
    customer_id = await partner.customer()
    assert await listed(partner, customer_id) == []
    lost, kept = await device(partner, customer_id), await device(partner, customer_id)

    devices = await listed(partner, customer_id)
    assert [d["deviceId"] for d in devices] == [kept.device_id, lost.device_id]  # newest first
    assert devices[1]["platform"] == "android" and devices[1]["customerId"] == customer_id
    assert devices[1]["algorithm"] == "KEY_ALGORITHM_ECDSA_P256_SHA256"
    assert len(devices[1]["keyFingerprint"]) == 64 and "registeredAt" in devices[1]
    assert "revokedAt" not in devices[1]
    assert set(devices[1]) == {
        "deviceId",
        "customerId",
        "platform",
        "algorithm",
        "keyFingerprint",
        "registeredAt",
    }

    revoked = await partner.call("POST", revoke_path(customer_id, lost.device_id), {})
    assert revoked.status_code == 200, revoked.text
    answered = revoked.json()["device"]
    assert answered["deviceId"] == lost.device_id and "revokedAt" in answered
    # Idempotent: a revoked device is answered unchanged.
    again = await partner.call("POST", revoke_path(customer_id, lost.device_id), {})
    assert again.status_code == 200 and again.json()["device"] == answered

    devices = await listed(partner, customer_id)
    assert [d.get("revokedAt") for d in devices] == [None, answered["revokedAt"]]
    # Audited, with the device id only (no key, no personal data).
    entries = await revocations(partner, customer_id)
    assert len(entries) == 2  # each call that answers it revoked
    assert all(e.details == {"device_id": lost.device_id} for e in entries)
    assert {(e.org_id, e.outcome) for e in entries} == {(partner.org_id, "success")}
    assert_acceptable_to_audit(entries)


async def test_the_partner_client_lists_and_revokes(partner) -> None:
    """clients/python's IdentityClient over the same gateway."""
    customer_id = await partner.customer()
    signer = await device(partner, customer_id)
    secret = partner.headers["Authorization"].removeprefix("Bearer ")
    client = IdentityClient(api_key=secret, http=partner.http)
    [found] = await client.list_devices(customer_id)
    assert found["deviceId"] == signer.device_id and "revokedAt" not in found
    revoked = await client.revoke_device(customer_id, signer.device_id)
    assert revoked["deviceId"] == signer.device_id and "revokedAt" in revoked
    assert await client.list_devices(customer_id) == [revoked]
    with pytest.raises(ApiError) as refused:
        await client.revoke_device(customer_id, "dev_unknown")
    assert (refused.value.http_status, refused.value.reason) == (404, "DEVICE_NOT_FOUND")


async def test_a_revoked_devices_captures_are_refused_and_its_id_not_registered_again(
    partner,
) -> None:
    customer_id = await partner.customer()
    lost = await device(partner, customer_id)
    accepted = await card_capture(partner, customer_id, lost)
    assert accepted.status_code == 200, accepted.text
    revoked = await partner.call("POST", revoke_path(customer_id, lost.device_id), {})
    assert revoked.status_code == 200, revoked.text

    refused = await card_capture(partner, customer_id, lost)
    error = assert_error(refused, 403, "DEVICE_REVOKED")
    assert_documented(refused)
    assert error["metadata"] == {"device_id": lost.device_id}
    again = await register(partner, customer_id, lost)
    assert_error(again, 403, "DEVICE_REVOKED")
    assert_documented(again)
    # Bringing a revoked device back is a trace worth keeping: audited.
    [denied] = await rows_of(
        partner,
        models.AuditOutbox,
        action="device.register",
        outcome="denied",
        subject=f"customer:{customer_id}",
    )
    assert denied.details == {"device_id": lost.device_id, "reason": "DEVICE_REVOKED"}
    # A new installation registers a new id, and its captures are checked.
    fresh = await device(partner, customer_id)
    assert (await card_capture(partner, customer_id, fresh)).status_code == 200


async def test_refusals_are_precise_and_change_nothing(partners) -> None:
    partner, other = partners
    customer_id, theirs = await partner.customer(), await other.customer()
    mine, their_device = await device(partner, customer_id), await device(other, theirs)
    sibling = await partner.customer()
    sibling_device = await device(partner, sibling)

    cases = [
        # An unknown customer; another organisation's customer.
        ("cus_unknown", mine.device_id, 404, "CUSTOMER_NOT_FOUND"),
        (theirs, their_device.device_id, 404, "CUSTOMER_NOT_FOUND"),
        # Another organisation's device, another customer's, an unknown one.
        (customer_id, their_device.device_id, 404, "DEVICE_NOT_FOUND"),
        (customer_id, sibling_device.device_id, 404, "DEVICE_NOT_FOUND"),
        (customer_id, "dev_unknown", 404, "DEVICE_NOT_FOUND"),
        (customer_id, "d" * 129, 400, "INVALID_FIELD"),
    ]
    for customer, device_id, status, reason in cases:
        answer = await partner.call("POST", revoke_path(customer, device_id), {})
        assert_error(answer, status, reason)
        assert_documented(answer)
    for customer in ("cus_unknown", theirs):
        answer = await partner.call("GET", devices_path(customer))
        assert_error(answer, 404, "CUSTOMER_NOT_FOUND")
        assert_documented(answer)

    # Nothing revoked, nothing audited.
    for who, customer in ((partner, customer_id), (partner, sibling), (other, theirs)):
        assert all("revokedAt" not in d for d in await listed(who, customer))
        assert await revocations(who, customer) == []


async def test_an_erased_customers_devices_are_neither_listed_nor_revoked(partner) -> None:
    customer_id = await partner.customer()
    signer = await device(partner, customer_id)
    erased = await partner.call("POST", f"/api/identity/customers/{customer_id}/erase", {})
    assert erased.status_code == 200, erased.text
    for method, path in [
        ("GET", devices_path(customer_id)),
        ("POST", revoke_path(customer_id, signer.device_id)),
    ]:
        answer = await partner.call(method, path, {} if method == "POST" else None)
        assert_error(answer, 400, "CUSTOMER_ERASED")
        assert_documented(answer)
    assert await revocations(partner, customer_id) == []


async def test_an_sdk_session_token_neither_lists_nor_revokes(partner) -> None:
    """A browser holding one customer's token must not end the customer's
    other devices (nor see them)."""
    customer_id = await partner.customer()
    signer = await device(partner, customer_id)
    token = (await partner.session(customer_id))["token"]
    for method, path in [
        ("GET", devices_path(customer_id)),
        ("POST", revoke_path(customer_id, signer.device_id)),
    ]:
        answer = await partner.http.request(
            method, path, json={} if method == "POST" else None, headers=as_browser(token, None)
        )
        assert_error(answer, 403, "SDK_SESSION_ROUTE_FORBIDDEN")
        assert_documented(answer)
    assert all("revokedAt" not in d for d in await listed(partner, customer_id))
