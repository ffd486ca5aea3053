"""Webhook endpoints through the REST gateway, on both databases: kyc-tier on
port 0 (loopback targets allowed, as in the one-machine run), the real
gateway in front, and a real local HTTP receiver that checks the signature
with the secret the create response showed once. Plus the address guard
refusing loopback, private and link-local targets at connect time."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from identity_cli.schema import migrate_all
from identity_runtime import mesh
from identity_runtime.settings import load_settings
from services.kyc_tier import signing, webhooks
from services.kyc_tier.bootstrap import build
from services.kyc_tier.service import SPEC
from services.kyc_tier.settings import KycTierSettings
from tests.support import kyc_tier_env, start_service, unique_name
from tests.support.gateway import (
    assert_error,
    bearer,
    create_org_and_key,
    gateway_client,
    gateway_settings,
)
from tests.support.kyc_fakes import KycFakes
from tests.support.mesh import postgres_schema


class Receiver:
    """A local HTTP receiver: records each request, answers `status`."""

    def __init__(self) -> None:
        self.status = 200
        self.location = ""
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                outer.requests.append((self.path, dict(self.headers.items()), body))
                self.send_response(outer.status)
                if outer.location:
                    self.send_header("Location", outer.location)
                payload = b"x" * 100_000  # more than the sender reads
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "postgres":
        with postgres_schema() as url:
            yield url
        return
    url = f"sqlite:///{tmp_path_factory.mktemp('webhooks') / 'identity.db'}"
    migrate_all(url)
    yield url


@pytest.fixture(scope="module")
async def client(database_url: str):
    fakes = KycFakes()

    async def build_with_fakes(settings: Any) -> Any:
        return await build(settings, overrides=fakes.overrides())

    env = kyc_tier_env(database_url) | {"KYC_TIER_WEBHOOK_ALLOW_LOOPBACK": "true"}
    server = await start_service(dataclasses.replace(SPEC, build=build_with_fakes), env)
    async with gateway_client(gateway_settings({"kyc_tier": server.address})) as http:
        yield http
    await server.stop(0)


async def partner(database_url: str) -> dict[str, str]:
    _, _, secret = await asyncio.to_thread(
        create_org_and_key, database_url, unique_name("Org"), ("public",)
    )
    return bearer(secret)


async def test_created_webhook_is_listed_and_its_test_ping_is_signed(
    database_url, client, receiver
) -> None:
    headers = await partner(database_url)
    created = await client.post(
        "/api/identity/webhooks",
        json={
            "url": receiver.url(),
            "events": ["kyc.tier_changed", "verification.completed"],
            "description": "main",
        },
        headers=headers,
    )
    assert created.status_code == 200, created.text
    secret = created.json()["signingSecret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    webhook = created.json()["webhook"]
    assert webhook["url"] == receiver.url()
    assert webhook["events"] == ["kyc.tier_changed", "verification.completed"]
    assert webhook["active"] is True

    listed = await client.get("/api/identity/webhooks", headers=headers)
    assert listed.status_code == 200
    assert listed.json()["webhooks"] == [webhook]
    assert secret not in listed.text

    tested = await client.post(
        f"/api/identity/webhooks/{webhook['webhookId']}/test", json={}, headers=headers
    )
    assert tested.status_code == 200, tested.text
    assert tested.json()["delivered"] is True
    assert tested.json()["httpStatus"] == 200
    assert tested.json()["error"] == ""

    [(path, received, body)] = receiver.requests
    assert path == "/hook"
    for header in ("X-Identity-Signature", "X-Quantum-Signature"):
        assert received[header].startswith("sha256=")
        assert signing.verify(secret.encode(), body, received[header])
        assert not signing.verify(b"another secret", body, received[header])
    event = json.loads(body)
    assert event["type"] == "webhook.test"
    assert event["id"].startswith("evt_") and received["X-Identity-Event-Id"] == event["id"]
    assert event["created_at"].endswith("Z")
    assert event["data"] == {"webhook_id": webhook["webhookId"]}


async def test_a_failing_or_redirecting_receiver_is_reported_not_followed(
    database_url, client, receiver
) -> None:
    headers = await partner(database_url)
    created = await client.post(
        "/api/identity/webhooks",
        json={"url": receiver.url(), "events": ["customer.erased"]},
        headers=headers,
    )
    test_path = f"/api/identity/webhooks/{created.json()['webhook']['webhookId']}/test"

    receiver.status = 500
    failed = await client.post(test_path, json={}, headers=headers)
    assert failed.status_code == 200
    assert failed.json()["delivered"] is False
    assert failed.json()["httpStatus"] == 500
    assert failed.json()["error"] == "http_status"

    receiver.status, receiver.location = 302, receiver.url("/elsewhere")
    redirected = await client.post(test_path, json={}, headers=headers)
    assert redirected.json()["delivered"] is False
    assert redirected.json()["httpStatus"] == 302
    assert [p for p, _, _ in receiver.requests] == ["/hook", "/hook"]  # never /elsewhere


async def test_an_unreachable_receiver_is_reported(database_url, client, receiver) -> None:
    headers = await partner(database_url)
    url = receiver.url()
    receiver.close()  # nothing listens on the port any more
    created = await client.post(
        "/api/identity/webhooks", json={"url": url, "events": ["stepup.decided"]}, headers=headers
    )
    tested = await client.post(
        f"/api/identity/webhooks/{created.json()['webhook']['webhookId']}/test",
        json={},
        headers=headers,
    )
    assert tested.status_code == 200
    assert tested.json()["delivered"] is False
    assert tested.json()["error"] == "connection_refused"
    assert tested.json()["httpStatus"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"events": ["kyc.tier_changed"]},
        {"url": "ftp://example.com/hook", "events": ["kyc.tier_changed"]},
        {"url": "not a url", "events": ["kyc.tier_changed"]},
        {"url": "https://user:pw@example.com/hook", "events": ["kyc.tier_changed"]},
        {"url": "https://10.0.0.7/hook", "events": ["kyc.tier_changed"]},
        {"url": "https://192.168.1.1/hook", "events": ["kyc.tier_changed"]},
        {"url": "https://169.254.169.254/latest/meta-data", "events": ["kyc.tier_changed"]},
        {"url": "https://[fe80::1]/hook", "events": ["kyc.tier_changed"]},
        {"url": "https://[::ffff:10.0.0.1]/hook", "events": ["kyc.tier_changed"]},
        {"url": "https://example.com/hook", "events": []},
        {"url": "https://example.com/hook", "events": ["kyc.unknown"]},
        {
            "url": "https://example.com/hook",
            "events": ["kyc.tier_changed"],
            "description": "d" * 501,
        },
    ],
)
async def test_create_refusals(database_url, client, body) -> None:
    headers = await partner(database_url)
    error = assert_error(
        await client.post("/api/identity/webhooks", json=body, headers=headers),
        400,
        "INVALID_FIELD",
    )
    assert error["metadata"]["field"] in ("url", "events", "description")
    assert "10.0.0.7" not in error["message"] and "user:pw" not in error["message"]
    listed = await client.get("/api/identity/webhooks", headers=headers)
    assert listed.json().get("webhooks", []) == []  # no partial write


async def test_test_and_list_refusals(database_url, client, receiver) -> None:
    headers = await partner(database_url)
    assert_error(
        await client.post("/api/identity/webhooks/whk_unknown/test", json={}, headers=headers),
        404,
        "WEBHOOK_NOT_FOUND",
    )
    created = await client.post(
        "/api/identity/webhooks",
        json={"url": receiver.url(), "events": ["review.decided"]},
        headers=headers,
    )
    webhook_id = created.json()["webhook"]["webhookId"]
    other = await partner(database_url)
    assert_error(
        await client.post(f"/api/identity/webhooks/{webhook_id}/test", json={}, headers=other),
        404,
        "WEBHOOK_NOT_FOUND",
    )
    assert (await client.get("/api/identity/webhooks", headers=other)).json().get(
        "webhooks", []
    ) == []
    assert receiver.requests == []
    for response in (
        await client.get("/api/identity/webhooks"),
        await client.post("/api/identity/webhooks", json={"url": receiver.url()}),
        await client.post(f"/api/identity/webhooks/{webhook_id}/test", json={}),
    ):
        assert response.status_code == 401


# -- The address guard, without the mesh ---------------------------------------


@pytest.mark.parametrize(
    ("address", "loopback", "allowed"),
    [
        ("93.184.216.34", False, True),
        ("2606:2800:220:1:248:1893:25c8:1946", False, True),
        ("127.0.0.1", False, False),
        ("127.0.0.1", True, True),
        ("::1", True, True),
        ("10.1.2.3", True, False),
        ("172.16.0.1", True, False),
        ("192.168.0.1", True, False),
        ("169.254.169.254", True, False),
        ("fe80::1", True, False),
        ("fc00::1", True, False),
        ("100.64.0.1", True, False),
        ("0.0.0.0", True, False),
        ("224.0.0.1", True, False),
        ("::ffff:127.0.0.1", False, False),
        ("::ffff:10.0.0.1", True, False),
    ],
)
def test_address_guard(address: str, loopback: bool, allowed: bool) -> None:
    assert webhooks.address_allowed(ipaddress.ip_address(address), loopback) is allowed


async def test_the_sender_checks_the_resolved_address_at_connect_time(receiver) -> None:
    # "localhost" passes no literal check: the refusal comes from the resolved address.
    url = f"http://localhost:{receiver.port}/hook"
    refused = await webhooks.Sender(allow_loopback=False, timeout_seconds=5).post(
        url, b"{}", b"secret", "evt_1"
    )
    assert refused == webhooks.DeliveryResult(False, 0, refused.latency_ms, "address_refused")
    assert receiver.requests == []
    allowed = await webhooks.Sender(allow_loopback=True, timeout_seconds=5).post(
        url, b"{}", b"secret", "evt_2"
    )
    assert allowed.delivered and allowed.http_status == 200
    assert len(receiver.requests) == 1


def test_localhost_is_refused_at_registration_without_the_loopback_setting() -> None:
    with pytest.raises(Exception, match="url"):
        webhooks.check_url("http://localhost:8080/hook", allow_loopback=False)
    with pytest.raises(Exception, match="url"):
        webhooks.check_url("https://127.0.0.1/hook", allow_loopback=False)
    assert webhooks.check_url("https://example.com/hook", allow_loopback=False)


def test_production_refuses_loopback_webhook_targets() -> None:
    problems = KycTierSettings.validate(
        dataclasses.replace(_settings(), environment="production", webhook_allow_loopback=True)
    )
    assert ("webhook_allow_loopback", "production refuses loopback webhook targets") in problems


def _settings() -> KycTierSettings:
    return load_settings(KycTierSettings, mesh.KYC_TIER.env_prefix, kyc_tier_env("sqlite:///x.db"))
