"""Webhook endpoints changed, deleted, paged and watched, through the REST
gateway on both databases (the fixtures of test_webhooks: kyc-tier on port 0
with loopback targets allowed, a real local receiver): update and delete
with their refusals, the delivery log a page at a time, an endpoint disabled
by failures flagged in the list and announced (`endpoint.disabled`) to the
organisation's default endpoint, and an https receiver whose certificate
comes from a test CA the dispatcher is configured to trust."""

# ruff: noqa: F811 - the module fixtures of test_webhooks are imported, then requested by name

from __future__ import annotations

import asyncio
import dataclasses
import json
import ssl
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from identity_runtime import meshtls, signing
from identity_runtime.egress import GuardedPoster
from identity_store.types import utcnow
from services.kyc_tier import models
from services.kyc_tier.bootstrap import build
from services.kyc_tier.service import SPEC
from services.kyc_tier.webhook_targets import Sender
from tests.service.test_webhooks import (  # noqa: F401 - the shared module fixtures
    Receiver,
    _deliveries,
    _hook_and_customer,
    client,
    database_url,
    fakes,
    kyc_tier,
    partner,
    receiver,
)
from tests.support import kyc_tier_env, start_service, unique_name
from tests.support.gateway import assert_error, gateway_client, gateway_settings
from tests.support.kyc_fakes import rows_in

pytestmark = [pytest.mark.postgres]


async def _create(client, headers, url: str, events: list[str]) -> tuple[str, str]:
    created = await client.post(
        "/api/identity/webhooks", json={"url": url, "events": events}, headers=headers
    )
    assert created.status_code == 200, created.text
    return created.json()["webhook"]["webhookId"], created.json()["signingSecret"]


async def test_an_endpoint_is_updated_and_deleted_and_both_are_audited(
    database_url, client, receiver
) -> None:
    headers = await partner(database_url)
    webhook_id, secret = await _create(client, headers, receiver.url(), ["kyc.tier_changed"])
    path = f"/api/identity/webhooks/{webhook_id}"

    updated = await client.patch(
        path,
        json={"url": receiver.url("/v2"), "events": ["stepup.decided", "customer.erased"]},
        headers=headers,
    )
    assert updated.status_code == 200, updated.text
    hook = updated.json()["webhook"]
    assert hook["url"] == receiver.url("/v2")
    assert hook["events"] == ["customer.erased", "stepup.decided"]
    described = await client.patch(path, json={"description": "payments"}, headers=headers)
    assert described.json()["webhook"]["description"] == "payments"
    assert described.json()["webhook"]["url"] == receiver.url("/v2")  # kept
    # The secret is kept: the test ping to the new URL verifies with it.
    tested = await client.post(f"{path}/test", json={}, headers=headers)
    assert tested.json()["delivered"] is True
    [(sent_to, received, body)] = receiver.requests
    assert sent_to == "/v2" and signing.verify(
        secret.encode(), body, received["X-Identity-Signature"]
    )

    deleted = await client.delete(path, headers=headers)
    assert deleted.status_code == 200, deleted.text
    listed = await client.get("/api/identity/webhooks", headers=headers)
    assert listed.json().get("webhooks", []) == []
    for response in (
        await client.delete(path, headers=headers),
        await client.patch(path, json={"description": "x"}, headers=headers),
        await client.post(f"{path}/test", json={}, headers=headers),
        await client.get(f"{path}/deliveries", headers=headers),
    ):
        assert_error(response, 404, "WEBHOOK_NOT_FOUND")
    [row] = await rows_in(database_url, models.Webhook, webhook_id=webhook_id)
    assert row.secret_sealed == b"" and row.previous_secret_sealed is None  # destroyed
    audits = sorted(
        await rows_in(database_url, models.AuditOutbox, subject=f"webhook:{webhook_id}"),
        key=lambda a: a.id,
    )
    assert [(a.action, a.outcome, a.details) for a in audits if a.action != "webhook.test"] == [
        ("webhook.create", "success", {"events": "kyc.tier_changed"}),
        ("webhook.update", "success", {"fields": "url,events"}),
        ("webhook.update", "success", {"fields": "description"}),
        ("webhook.delete", "success", {}),
    ]
    assert all(a.actor.startswith("api_key:") for a in audits)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "webhook"),
        ({"url": "https://10.0.0.7/hook"}, "url"),
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"events": ["kyc.unknown"]}, "events"),
        ({"description": "d" * 501}, "description"),
    ],
)
async def test_update_refusals_write_nothing(database_url, client, receiver, body, field) -> None:
    headers = await partner(database_url)
    webhook_id, _ = await _create(client, headers, receiver.url(), ["kyc.tier_changed"])
    error = assert_error(
        await client.patch(f"/api/identity/webhooks/{webhook_id}", json=body, headers=headers),
        400,
        "INVALID_FIELD",
    )
    assert error["metadata"]["field"] == field
    assert "10.0.0.7" not in error["message"]
    [hook] = (await client.get("/api/identity/webhooks", headers=headers)).json()["webhooks"]
    assert (hook["url"], hook["events"], hook.get("description", "")) == (
        receiver.url(),
        ["kyc.tier_changed"],
        "",
    )


async def test_another_organisation_can_neither_update_nor_delete(
    database_url, client, receiver
) -> None:
    headers, other = await partner(database_url), await partner(database_url)
    webhook_id, _ = await _create(client, headers, receiver.url(), ["kyc.tier_changed"])
    path = f"/api/identity/webhooks/{webhook_id}"
    assert_error(await client.delete(path, headers=other), 404, "WEBHOOK_NOT_FOUND")
    assert_error(
        await client.patch(path, json={"description": "x"}, headers=other),
        404,
        "WEBHOOK_NOT_FOUND",
    )
    assert (await client.delete(path)).status_code == 401
    [hook] = (await client.get("/api/identity/webhooks", headers=headers)).json()["webhooks"]
    assert hook["webhookId"] == webhook_id and hook.get("description", "") == ""


async def test_the_delivery_log_pages_newest_first_with_a_cursor(
    database_url, client, receiver
) -> None:
    headers = await partner(database_url)
    webhook_id, _ = await _create(client, headers, receiver.url(), ["kyc.tier_changed"])
    for _ in range(5):  # each new customer with a NIK: none -> basic, one event
        created = await client.post(
            "/api/customers",
            json={"externalId": unique_name("ext"), "fullName": "A B", "nik": "3273024107950003"},
            headers=headers,
        )
        assert created.status_code == 200, created.text
    path = f"/api/identity/webhooks/{webhook_id}/deliveries"
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        params = {"pageSize": 2, **({"pageToken": token} if token else {})}
        page = await client.get(path, params=params, headers=headers)
        assert page.status_code == 200, page.text
        seen += [d["deliveryId"] for d in page.json()["deliveries"]]
        token = page.json().get("nextPageToken", "")
        pages += 1
        if not token:
            break
    assert pages == 3 and len(seen) == 5 and len(set(seen)) == 5
    stored = sorted(
        await _deliveries(database_url, webhook_id),
        key=lambda d: (d[0].created_at, d[0].delivery_id),
        reverse=True,
    )
    assert seen == [d.delivery_id for d, _ in stored]
    for params, field in (
        ({"pageSize": -1}, "pageSize"),
        ({"pageToken": "garbage"}, "pageToken"),
    ):
        error = assert_error(
            await client.get(path, params=params, headers=headers), 400, "INVALID_FIELD"
        )
        assert error["metadata"]["field"] == field


async def test_an_endpoint_disabled_by_failures_is_flagged_and_announced_to_the_default(
    database_url, client, kyc_tier, receiver
) -> None:
    headers = await partner(database_url)
    failing = Receiver()
    failing.status = 500
    try:
        failing_id, _, _ = await _hook_and_customer(client, headers, failing.url())
        default_id, default_secret = await _create(
            client, headers, receiver.url("/ops"), ["customer.erased"]
        )
        chosen = await client.put(
            "/api/identity/org/settings/default-webhook",
            json={"webhookId": default_id},
            headers=await partner_internal(database_url, headers),
        )
        assert chosen.status_code == 200, chosen.text
        dispatcher = kyc_tier.core.dispatcher
        now = utcnow()
        for _ in range(3):  # KYC_TIER_WEBHOOK_DISABLE_AFTER
            await dispatcher.flush(now)
            now += timedelta(hours=7)
        await dispatcher.flush(now)  # the notice the third failure queued
    finally:
        failing.close()
    listed = {
        h["webhookId"]: h
        for h in (await client.get("/api/identity/webhooks", headers=headers)).json()["webhooks"]
    }
    assert listed[failing_id]["active"] is False and listed[failing_id]["autoDisabled"] is True
    assert listed[failing_id]["disabledAt"]
    assert listed[default_id].get("autoDisabled", False) is False
    assert listed[default_id]["isDefault"] is True
    # The default endpoint was told, though it subscribed to customer.erased only.
    [(received, body)] = [(h, b) for path, h, b in receiver.requests if path == "/ops"]
    event = json.loads(body)
    assert event["type"] == "endpoint.disabled"
    assert event["data"] == {
        "webhook_id": failing_id,
        "reason": "failures",
        "consecutive_failures": 3,
    }
    assert signing.verify(default_secret.encode(), body, received["X-Identity-Signature"])
    # A manual disable is not flagged as automatic.
    await client.post(f"/api/identity/webhooks/{default_id}/disable", json={}, headers=headers)
    [hook] = [
        h
        for h in (await client.get("/api/identity/webhooks", headers=headers)).json()["webhooks"]
        if h["webhookId"] == default_id
    ]
    assert hook["active"] is False and hook.get("autoDisabled", False) is False


async def partner_internal(database_url: str, headers: dict[str, str]) -> dict[str, str]:
    """An internal-scope key of the organisation `headers` authenticates."""
    from tests.support.gateway import add_key, bearer

    org_id = await org_of(database_url, headers)
    _, secret = await asyncio.to_thread(add_key, database_url, org_id, ("public", "internal"))
    return bearer(secret)


async def org_of(database_url: str, headers: dict[str, str]) -> str:
    from services.kyc_tier.partners import PartnerDirectory
    from tests.support import TEST_PEPPER

    secret = headers["Authorization"].removeprefix("Bearer ")
    directory = PartnerDirectory(TEST_PEPPER)
    [key] = await rows_in(database_url, models.ApiKey, secret_hash=directory.hash_secret(secret))
    return key.org_id


# -- https receivers ---------------------------------------------------------------


class TlsReceiver(Receiver):
    """The local receiver behind TLS, its certificate (for 127.0.0.1) issued by a test CA."""

    def __init__(self, directory: Path) -> None:
        ca_cert, ca_key = meshtls.new_ca("webhook test CA")
        cert, key = meshtls.issue(ca_cert, ca_key, "webhook-receiver", ["127.0.0.1"])
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_bytes(ca_cert)
        (directory / "cert.pem").write_bytes(cert)
        (directory / "key.pem").write_bytes(key)
        super().__init__()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)

    def url(self, path: str = "/hook") -> str:
        return f"https://127.0.0.1:{self.port}{path}"


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[TlsReceiver]:
    r = TlsReceiver(tmp_path)
    yield r
    r.close()


async def test_an_https_receiver_with_a_trusted_test_ca_gets_signed_deliveries(
    tls_receiver: TlsReceiver,
) -> None:
    body = b'{"id":"evt_1","type":"webhook.test"}'
    trusting = Sender(GuardedPoster(True, 5.0, tls_receiver.ca_file))
    result = await trusting.post(tls_receiver.url(), body, (b"s" * 32,), "evt_1")
    assert (result.delivered, result.http_status, result.error) == (True, 200, "")
    [(_, received, sent)] = tls_receiver.requests
    assert sent == body and signing.verify(b"s" * 32, body, received["X-Identity-Signature"])
    # Without the CA the receiver's certificate is not trusted: nothing is sent.
    refused = await Sender(GuardedPoster(True, 5.0)).post(
        tls_receiver.url(), body, (b"s" * 32,), "evt_2"
    )
    assert (refused.delivered, refused.error) == (False, "tls_error")
    assert len(tls_receiver.requests) == 1


async def test_kyc_tier_trusting_the_test_ca_delivers_events_to_an_https_receiver(
    database_url, fakes, tls_receiver: TlsReceiver
) -> None:
    """kyc-tier configured with KYC_TIER_WEBHOOK_CA_FILE: the test ping and a
    real event from the outbox reach the https receiver, signed."""

    async def build_with_fakes(settings: Any) -> Any:
        return await build(settings, overrides=fakes.overrides())

    env = kyc_tier_env(database_url) | {
        "KYC_TIER_WEBHOOK_ALLOW_LOOPBACK": "true",
        "KYC_TIER_WEBHOOK_POLL_SECONDS": "3600",
        "KYC_TIER_WEBHOOK_CA_FILE": str(tls_receiver.ca_file),
    }
    server = await start_service(dataclasses.replace(SPEC, build=build_with_fakes), env)
    try:
        settings = gateway_settings({"kyc_tier": server.address})
        async with gateway_client(settings) as http:
            headers = await partner(database_url)
            webhook_id, secret, customer_id = await _hook_and_customer(
                http, headers, tls_receiver.url()
            )
            tested = await http.post(
                f"/api/identity/webhooks/{webhook_id}/test", json={}, headers=headers
            )
            assert tested.json()["delivered"] is True, tested.text
            assert await server.core.dispatcher.flush() >= 1
    finally:
        await server.stop(0)
    events = [json.loads(body) for _, _, body in tls_receiver.requests]
    assert [e["type"] for e in events] == ["webhook.test", "kyc.tier_changed"]
    assert events[1]["data"]["customer_id"] == customer_id
    for _, received, body in tls_receiver.requests:
        assert signing.verify(secret.encode(), body, received["X-Quantum-Signature"])


def test_the_webhook_ca_setting_must_name_a_file(tmp_path: Path) -> None:
    from identity_runtime.settings import SettingsError, load_settings
    from services.kyc_tier.settings import KycTierSettings
    from tests.support import kyc_tier_env

    env = kyc_tier_env("sqlite://") | {"KYC_TIER_WEBHOOK_CA_FILE": str(tmp_path / "missing.pem")}
    with pytest.raises(SettingsError, match="KYC_TIER_WEBHOOK_CA_FILE"):
        load_settings(KycTierSettings, "KYC_TIER", env)
