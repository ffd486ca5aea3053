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
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from identity_cli.schema import migrate_all
from identity_runtime import mesh, signing
from identity_runtime.egress import RETRY_BACKOFF_CAP, GuardedPoster, retry_backoff
from identity_runtime.settings import load_settings
from identity_store.db import Database
from identity_store.types import utcnow
from services.kyc_tier import models, webhook_events, webhook_targets
from services.kyc_tier.bootstrap import build
from services.kyc_tier.service import SPEC
from services.kyc_tier.settings import KycTierSettings
from tests.integration.test_kyc_trust import duplicate_review
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

VALID_NIK = "3273024107950003"


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
def fakes() -> KycFakes:
    return KycFakes()


@pytest.fixture(scope="module")
async def kyc_tier(database_url: str, fakes: KycFakes):

    async def build_with_fakes(settings: Any) -> Any:
        return await build(settings, overrides=fakes.overrides())

    env = kyc_tier_env(database_url) | {
        "KYC_TIER_WEBHOOK_ALLOW_LOOPBACK": "true",
        # The tests drive the dispatcher themselves, at chosen times.
        "KYC_TIER_WEBHOOK_POLL_SECONDS": "3600",
        "KYC_TIER_WEBHOOK_DISABLE_AFTER": "3",
        # Short, for the trickling receivers of test_webhook_deadline.py.
        "KYC_TIER_WEBHOOK_TIMEOUT_SECONDS": "3",
    }
    server = await start_service(dataclasses.replace(SPEC, build=build_with_fakes), env)
    # Its loop would also claim whenever an attempt of a test's flush ends, at
    # the real time, while the test's passes are at chosen times.
    await server.core.dispatcher.stop()
    yield server
    await server.stop(0)


@pytest.fixture(scope="module")
async def client(kyc_tier):
    async with gateway_client(gateway_settings({"kyc_tier": kyc_tier.address})) as http:
        yield http


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
        # The withdrawal's audit action, not its event type (review.withdrawn).
        {"url": "https://example.com/hook", "events": ["review.withdrawn", "review.withdraw"]},
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


# -- Events from the outbox ------------------------------------------------------


async def _hook_and_customer(client, headers, url: str) -> tuple[str, str, str]:
    created = await client.post(
        "/api/identity/webhooks", json={"url": url, "events": ["kyc.tier_changed"]}, headers=headers
    )
    assert created.status_code == 200, created.text
    customer = await client.post(
        "/api/customers",
        json={"externalId": unique_name("ext"), "fullName": "Siti Rahayu", "nik": VALID_NIK},
        headers=headers,
    )
    assert customer.status_code == 200, customer.text
    return (
        created.json()["webhook"]["webhookId"],
        created.json()["signingSecret"],
        customer.json()["customer"]["customerId"],
    )


async def _deliveries(database_url: str, webhook_id: str) -> list[Any]:
    database = Database(database_url)
    try:
        return await database.run(
            lambda s: [
                (
                    d,
                    list(
                        s.scalars(
                            select(models.WebhookAttempt)
                            .where(models.WebhookAttempt.delivery_id == d.delivery_id)
                            .order_by(models.WebhookAttempt.id)
                        )
                    ),
                )
                for d in s.scalars(
                    select(models.WebhookDelivery).where(
                        models.WebhookDelivery.webhook_id == webhook_id
                    )
                )
            ]
        )
    finally:
        database.dispose()


async def _tier_event(database_url: str, event_id: str) -> Any:
    database = Database(database_url)
    try:
        return await database.run(lambda s: s.get(models.TierEvent, event_id))
    finally:
        database.dispose()


async def test_a_tier_change_commits_its_event_which_is_delivered_signed(
    database_url, client, kyc_tier, receiver
) -> None:
    headers = await partner(database_url)
    webhook_id, secret, customer_id = await _hook_and_customer(client, headers, receiver.url())
    # Creating the customer checked its NIK: none -> basic. The event is in
    # the outbox, committed with the tier event that recorded the change.
    [(delivery, attempts)] = await _deliveries(database_url, webhook_id)
    depth, age = await kyc_tier.core.dispatcher.measure()
    assert depth >= 1 and age >= 0.0
    assert (delivery.state, delivery.event_type, attempts) == ("pending", "kyc.tier_changed", [])
    event = json.loads(delivery.body)
    assert event["data"]["customer_id"] == customer_id
    assert (event["data"]["from_tier"], event["data"]["to_tier"]) == ("none", "basic")
    assert event["data"]["cause"] == "verification"
    assert VALID_NIK not in delivery.body.decode() and "Siti" not in delivery.body.decode()
    tier_event = await _tier_event(database_url, event["data"]["tier_event_id"])
    assert (tier_event.customer_id, tier_event.to_tier) == (customer_id, "basic")

    dispatcher = kyc_tier.core.dispatcher
    assert await dispatcher.flush() >= 1
    [(path, received, body)] = receiver.requests
    assert body == delivery.body
    for header in ("X-Identity-Signature", "X-Quantum-Signature"):
        assert signing.verify(secret.encode(), body, received[header])
    [(delivery, attempts)] = await _deliveries(database_url, webhook_id)
    assert delivery.state == "delivered"
    assert [(a.http_status, a.error) for a in attempts] == [(200, "")]
    pending, _ = await kyc_tier.core.dispatcher.measure()
    assert pending == depth - 1  # this one left the queue
    gauge = REGISTRY.get_sample_value("identity_queue_depth", {"queue": "webhook_deliveries"})
    assert gauge == pending
    await dispatcher.flush()
    assert len(receiver.requests) == 1  # delivered once


async def test_a_failing_receiver_is_retried_with_backoff_then_receives_the_event(
    database_url, client, kyc_tier, receiver
) -> None:
    headers = await partner(database_url)
    webhook_id, _, customer_id = await _hook_and_customer(client, headers, receiver.url())
    dispatcher = kyc_tier.core.dispatcher
    now = utcnow()
    receiver.status = 500
    for attempt in range(2):
        await dispatcher.flush(now)
        [(delivery, attempts)] = await _deliveries(database_url, webhook_id)
        assert delivery.state == "pending" and len(attempts) == attempt + 1
        wait = delivery.next_attempt_at - now
        # Backoff doubles from 30 s, jittered over its upper half.
        assert timedelta(seconds=15 * 2**attempt) <= wait <= timedelta(seconds=30 * 2**attempt)
        await dispatcher.flush(now)  # not due yet: nothing is sent
        assert len(receiver.requests) == attempt + 1
        now = delivery.next_attempt_at
    receiver.status = 200
    await dispatcher.flush(now)
    [(delivery, attempts)] = await _deliveries(database_url, webhook_id)
    assert delivery.state == "delivered"
    assert [a.http_status for a in attempts] == [500, 500, 200]
    assert [a.error for a in attempts] == ["http_status", "http_status", ""]
    bodies = {b for _, _, b in receiver.requests}
    assert bodies == {delivery.body}  # every attempt sends the same signed bytes


async def test_an_endpoint_failing_in_a_row_is_disabled(
    database_url, client, kyc_tier, receiver
) -> None:
    headers = await partner(database_url)
    webhook_id, _, customer_id = await _hook_and_customer(client, headers, receiver.url())
    receiver.close()
    dispatcher = kyc_tier.core.dispatcher
    now = utcnow()
    for _ in range(3):  # KYC_TIER_WEBHOOK_DISABLE_AFTER
        await dispatcher.flush(now)
        now += timedelta(hours=7)  # past any backoff
    [(delivery, attempts)] = await _deliveries(database_url, webhook_id)
    assert delivery.state == "failed"
    assert [a.error for a in attempts] == ["connection_refused"] * 3
    [hook] = (await client.get("/api/identity/webhooks", headers=headers)).json()["webhooks"]
    assert hook["active"] is False
    await dispatcher.flush(now + timedelta(days=1))
    [(_, attempts)] = await _deliveries(database_url, webhook_id)
    assert len(attempts) == 3  # nothing more is sent


async def test_an_event_rolled_back_with_its_change_is_never_sent(database_url, kyc_tier) -> None:
    # emit() writes in the caller's transaction: a rollback takes the event with it.
    database = Database(database_url)
    try:

        def work(session: Any) -> None:
            hook = session.scalar(select(models.Webhook).limit(1))
            assert hook is not None
            webhook_events.emit(session, hook.org_id, "kyc.tier_changed", {"customer_id": "cus_x"})
            session.flush()
            raise RuntimeError("the change fails")

        def count(session: Any) -> int:
            return int(session.scalar(select(func.count(models.WebhookDelivery.delivery_id))))

        before = await database.run(count)
        with pytest.raises(RuntimeError):
            await database.run(work)
        after = await database.run(count)
        assert after == before
    finally:
        database.dispose()


async def test_a_match_a_tier_change_and_an_erasure_announce_each_event_once(
    database_url, client, kyc_tier, fakes, receiver
) -> None:
    headers = await partner(database_url)
    created = await client.post(
        "/api/identity/webhooks",
        json={"url": receiver.url(), "events": sorted(webhook_targets.EVENT_TYPES)},
        headers=headers,
    )
    secret = created.json()["signingSecret"].encode()
    customer = await client.post(
        "/api/customers",
        json={"externalId": unique_name("ext"), "fullName": "Siti Rahayu", "nik": VALID_NIK},
        headers=headers,
    )
    customer_id = customer.json()["customer"]["customerId"]
    fakes.matcher.enroll_reference(customer_id)
    matched = await client.post(
        "/api/identity/face/match",
        json={"customerId": customer_id, "probeImage": {"data": "cHJvYmU="}},
        headers=headers,
    )
    assert matched.status_code == 200, matched.text
    verification_id = matched.json()["verification"]["verificationId"]
    erased = await client.post(
        f"/api/identity/customers/{customer_id}/erase", json={"reason": "request"}, headers=headers
    )
    assert erased.status_code == 200, erased.text
    await kyc_tier.core.dispatcher.flush()
    events = []
    for _, received, body in receiver.requests:
        assert signing.verify(secret, body, received["X-Identity-Signature"])
        events.append(json.loads(body))
    assert len({e["id"] for e in events}) == len(events)
    assert all(e["data"]["customer_id"] == customer_id for e in events)
    assert sorted(e["type"] for e in events) == [
        "customer.erased",
        "kyc.tier_changed",
        "kyc.tier_changed",
        "verification.completed",
    ]
    [completed] = [e for e in events if e["type"] == "verification.completed"]
    assert completed["data"]["verification_id"] == verification_id
    assert completed["data"]["kind"] == "face_match"
    fakes.reset()


async def test_an_erasure_sends_a_withdrawn_review_to_the_subscribed_endpoint_once(
    database_url, client, kyc_tier, fakes, receiver
) -> None:
    """A partner tracking open reviews learns one will never be decided:
    `review.withdrawn`, signed, ids only, once (the erasure asked again sends
    nothing more), and only to the endpoint subscribed to it."""
    org_id, _, key = await asyncio.to_thread(
        create_org_and_key, database_url, unique_name("Org"), ("public",)
    )
    headers = bearer(key)
    created = await client.post(
        "/api/identity/webhooks",
        json={"url": receiver.url("/withdrawn"), "events": ["review.withdrawn"]},
        headers=headers,
    )
    assert created.status_code == 200, created.text
    assert created.json()["webhook"]["events"] == ["review.withdrawn"]
    secret = created.json()["signingSecret"].encode()
    others = await client.post(
        "/api/identity/webhooks",
        json={"url": receiver.url("/others"), "events": ["review.decided", "customer.erased"]},
        headers=headers,
    )
    assert others.status_code == 200, others.text
    try:
        customer_id, review_id = await duplicate_review(kyc_tier.core, fakes, org_id)
    finally:
        fakes.reset()
    erased = await client.post(
        f"/api/identity/customers/{customer_id}/erase", json={"reason": "request"}, headers=headers
    )
    assert erased.status_code == 200, erased.text
    erasure_id = erased.json()["erasureId"]
    await kyc_tier.core.dispatcher.flush()

    withdrawn = [(r, b) for p, r, b in receiver.requests if p == "/withdrawn"]
    [(received, body)] = withdrawn
    assert signing.verify(secret, body, received["X-Identity-Signature"])
    event = json.loads(body)
    assert received["X-Identity-Event-Id"] == event["id"]
    assert event["type"] == "review.withdrawn"
    assert sorted(event["data"]) == [
        "customer_id",
        "erasure_id",
        "reason",
        "review_id",
        "status",
        "withdrawn_at",
    ]
    assert {k: v for k, v in event["data"].items() if k != "withdrawn_at"} == {
        "review_id": review_id,
        "customer_id": customer_id,
        "status": "withdrawn",
        "reason": "customer_erased",
        "erasure_id": erasure_id,
    }
    for personal in (b"Siti", b"SITI", b"siti@", b"+62812", VALID_NIK.encode()):
        assert personal not in body
    # The endpoint not subscribed to it hears of the erasure only.
    assert [json.loads(b)["type"] for p, _, b in receiver.requests if p == "/others"] == [
        "customer.erased"
    ]
    listed = await client.get(
        f"/api/identity/webhooks/{created.json()['webhook']['webhookId']}/deliveries",
        headers=headers,
    )
    [delivery] = listed.json()["deliveries"]
    assert (delivery["eventType"], delivery["state"]) == ("review.withdrawn", "delivered")

    # The erasure asked again (a retried request): nothing more is sent.
    again = await client.post(
        f"/api/identity/customers/{customer_id}/erase", json={"reason": "request"}, headers=headers
    )
    assert again.status_code == 200 and again.json()["erasureId"] == erasure_id
    await kyc_tier.core.dispatcher.flush()
    assert len(receiver.requests) == 2


async def test_rotation_signs_with_both_secrets_for_the_overlap_then_the_new_one(
    database_url, client, kyc_tier, receiver
) -> None:
    headers = await partner(database_url)
    webhook_id, old, _ = await _hook_and_customer(client, headers, receiver.url())
    rotated = await client.post(
        f"/api/identity/webhooks/{webhook_id}/rotate-secret",
        json={"overlapSeconds": 3600},
        headers=headers,
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["signingSecret"]
    assert new.startswith("whsec_") and new != old
    assert rotated.json()["previousSecretExpiresAt"]
    assert new not in (await client.get("/api/identity/webhooks", headers=headers)).text

    # Within the overlap: the pending event is signed with both secrets.
    dispatcher = kyc_tier.core.dispatcher
    await dispatcher.flush()
    tested = await client.post(
        f"/api/identity/webhooks/{webhook_id}/test", json={}, headers=headers
    )
    assert tested.json()["delivered"] is True
    assert len(receiver.requests) == 2
    for _, received, body in receiver.requests:
        for header in ("X-Identity-Signature", "X-Quantum-Signature"):
            assert len(received[header].split(",")) == 2
            assert signing.verify(old.encode(), body, received[header])
            assert signing.verify(new.encode(), body, received[header])
            assert not signing.verify(b"whsec_other", body, received[header])

    # After it: only the new secret signs.
    [(delivery, _)] = await _deliveries(database_url, webhook_id)
    later = utcnow() + timedelta(hours=2)
    secrets = await kyc_tier.core.database.run(
        lambda s: kyc_tier.core.webhooks.open_secrets(s, s.get(models.Webhook, webhook_id), later)
    )
    assert secrets == (new.encode(),)


async def test_rotation_refusals(database_url, client, receiver) -> None:
    headers = await partner(database_url)
    created = await client.post(
        "/api/identity/webhooks",
        json={"url": receiver.url(), "events": ["kyc.tier_changed"]},
        headers=headers,
    )
    webhook_id = created.json()["webhook"]["webhookId"]
    for overlap in (-1, 7 * 86400 + 1):
        error = assert_error(
            await client.post(
                f"/api/identity/webhooks/{webhook_id}/rotate-secret",
                json={"overlapSeconds": overlap},
                headers=headers,
            ),
            400,
            "INVALID_FIELD",
        )
        assert error["metadata"]["field"] == "overlapSeconds"
    for path in ("rotate-secret", "disable", "enable"):
        assert_error(
            await client.post(
                f"/api/identity/webhooks/whk_unknown/{path}", json={}, headers=headers
            ),
            404,
            "WEBHOOK_NOT_FOUND",
        )
        assert_error(
            await client.post(
                f"/api/identity/webhooks/{webhook_id}/{path}",
                json={},
                headers=await partner(database_url),
            ),
            404,
            "WEBHOOK_NOT_FOUND",
        )
    # The refused rotations changed nothing: the original secret still signs alone.
    tested = await client.post(
        f"/api/identity/webhooks/{webhook_id}/test", json={}, headers=headers
    )
    assert tested.json()["delivered"] is True
    [(_, received, body)] = receiver.requests
    assert received["X-Identity-Signature"] == signing.sign(
        created.json()["signingSecret"].encode(), body
    )


async def test_a_disabled_endpoint_gets_nothing_until_enabled(
    database_url, client, kyc_tier, receiver
) -> None:
    headers = await partner(database_url)
    created = await client.post(
        "/api/identity/webhooks",
        json={"url": receiver.url(), "events": ["kyc.tier_changed"]},
        headers=headers,
    )
    webhook_id = created.json()["webhook"]["webhookId"]
    disabled = await client.post(
        f"/api/identity/webhooks/{webhook_id}/disable", json={}, headers=headers
    )
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["webhook"]["active"] is False
    await client.post(
        "/api/customers",
        json={"externalId": unique_name("ext"), "fullName": "Siti Rahayu", "nik": VALID_NIK},
        headers=headers,
    )
    assert await _deliveries(database_url, webhook_id) == []  # nothing queued for it
    enabled = await client.post(
        f"/api/identity/webhooks/{webhook_id}/enable", json={}, headers=headers
    )
    assert enabled.json()["webhook"]["active"] is True
    await client.post(
        "/api/customers",
        json={"externalId": unique_name("ext"), "fullName": "Siti Rahayu", "nik": VALID_NIK},
        headers=headers,
    )
    await kyc_tier.core.dispatcher.flush()
    assert len(receiver.requests) == 1


async def test_the_delivery_log_shows_attempts_and_a_delivery_can_be_redelivered(
    database_url, client, kyc_tier, receiver
) -> None:
    headers = await partner(database_url)
    webhook_id, _, _ = await _hook_and_customer(client, headers, receiver.url())
    dispatcher = kyc_tier.core.dispatcher
    receiver.status = 503
    await dispatcher.flush()
    receiver.status = 200
    await dispatcher.flush(utcnow() + timedelta(hours=1))
    log = await client.get(f"/api/identity/webhooks/{webhook_id}/deliveries", headers=headers)
    assert log.status_code == 200, log.text
    [delivery] = log.json()["deliveries"]
    assert delivery["eventType"] == "kyc.tier_changed"
    assert delivery["state"] == "delivered" and delivery["attempts"] == 2
    assert [(a["httpStatus"], a["error"]) for a in delivery["attemptLog"]] == [
        (503, "http_status"),
        (200, ""),
    ]
    assert all(a["attemptedAt"] and a["latencyMs"] >= 0 for a in delivery["attemptLog"])

    redelivered = await client.post(
        f"/api/identity/webhooks/{webhook_id}/deliveries/{delivery['deliveryId']}/redeliver",
        json={},
        headers=headers,
    )
    assert redelivered.status_code == 200, redelivered.text
    assert redelivered.json()["delivery"]["state"] == "pending"
    await dispatcher.flush()
    bodies = [b for _, _, b in receiver.requests]
    assert len(bodies) == 3 and len(set(bodies)) == 1  # the same event, the same bytes
    [delivery] = (
        await client.get(f"/api/identity/webhooks/{webhook_id}/deliveries", headers=headers)
    ).json()["deliveries"]
    assert delivery["state"] == "delivered" and delivery["attempts"] == 3


async def test_delivery_log_and_redeliver_refusals(
    database_url, client, kyc_tier, receiver
) -> None:
    headers = await partner(database_url)
    webhook_id, _, _ = await _hook_and_customer(client, headers, receiver.url())
    [(delivery, _)] = await _deliveries(database_url, webhook_id)
    redeliver = f"/api/identity/webhooks/{webhook_id}/deliveries/{delivery.delivery_id}/redeliver"
    other = await partner(database_url)
    assert_error(
        await client.get("/api/identity/webhooks/whk_unknown/deliveries", headers=headers),
        404,
        "WEBHOOK_NOT_FOUND",
    )
    assert_error(
        await client.get(f"/api/identity/webhooks/{webhook_id}/deliveries", headers=other),
        404,
        "WEBHOOK_NOT_FOUND",
    )
    assert_error(await client.post(redeliver, json={}, headers=other), 404, "WEBHOOK_NOT_FOUND")
    assert_error(
        await client.post(
            f"/api/identity/webhooks/{webhook_id}/deliveries/whd_unknown/redeliver",
            json={},
            headers=headers,
        ),
        404,
        "WEBHOOK_DELIVERY_NOT_FOUND",
    )
    await client.post(f"/api/identity/webhooks/{webhook_id}/disable", json={}, headers=headers)
    assert_error(await client.post(redeliver, json={}, headers=headers), 400, "WEBHOOK_DISABLED")
    [(delivery, _)] = await _deliveries(database_url, webhook_id)
    assert delivery.state == "failed"  # given up at the disable, not queued again
    assert receiver.requests == []


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    assert retry_backoff(1, lambda: 0.0) == timedelta(seconds=15)
    assert retry_backoff(1, lambda: 1.0) == timedelta(seconds=30)
    assert retry_backoff(3, lambda: 1.0) == timedelta(seconds=120)
    assert retry_backoff(30, lambda: 1.0) == RETRY_BACKOFF_CAP


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
    assert webhook_targets.address_allowed(ipaddress.ip_address(address), loopback) is allowed


async def test_the_sender_checks_the_resolved_address_at_connect_time(receiver) -> None:
    # "localhost" passes no literal check: the refusal comes from the resolved address.
    # (Generous timeouts: the delivery to the local receiver must not expire under load.)
    url = f"http://localhost:{receiver.port}/hook"
    refused = await webhook_targets.Sender(
        GuardedPoster(allow_loopback=False, timeout_seconds=30)
    ).post(url, b"{}", (b"secret",), "evt_1")
    assert refused == webhook_targets.DeliveryResult(
        False, 0, refused.latency_ms, "address_refused"
    )
    assert receiver.requests == []
    allowed = await webhook_targets.Sender(
        GuardedPoster(allow_loopback=True, timeout_seconds=30)
    ).post(url, b"{}", (b"secret",), "evt_2")
    assert allowed.delivered and allowed.http_status == 200
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("host", ["localhost.", "LOCALHOST.", "127.0.0.1.", "127.0.0.1"])
async def test_a_loopback_target_with_a_trailing_dot_is_delivered_where_loopback_is_allowed(
    receiver, host: str
) -> None:
    """The docs say one trailing dot is ignored; the resolver knows neither
    "localhost." nor "127.0.0.1." (probe 4: dns_failure in the one-machine run)."""
    url = f"http://{host}:{receiver.port}/hook"
    refused = await webhook_targets.Sender(
        GuardedPoster(allow_loopback=False, timeout_seconds=30)
    ).post(url, b"{}", (b"secret",), "evt_1")
    assert refused.error == "address_refused"
    allowed = await webhook_targets.Sender(
        GuardedPoster(allow_loopback=True, timeout_seconds=30)
    ).post(url, b"{}", (b"secret",), "evt_2")
    assert allowed.delivered and allowed.http_status == 200, allowed
    assert len(receiver.requests) == 1


def test_localhost_is_refused_at_registration_without_the_loopback_setting() -> None:
    with pytest.raises(Exception, match="url"):
        webhook_targets.check_url("http://localhost:8080/hook", allow_loopback=False)
    with pytest.raises(Exception, match="url"):
        webhook_targets.check_url("https://127.0.0.1/hook", allow_loopback=False)
    assert webhook_targets.check_url("https://example.com/hook", allow_loopback=False)


@pytest.mark.parametrize(
    "host",
    ["0x0a000001", "167772161", "012.0.0.1", "10.1", "0xa9fea9fe", "0177.1", "127.1"],
)
def test_other_spellings_of_a_private_address_are_refused_at_registration(host: str) -> None:
    """Resolvers read hex, octal, decimal and short IPv4 forms (the black-box
    probe registered 10.0.0.1 and 169.254.169.254 spelt so; delivery refused them)."""
    with pytest.raises(Exception, match="url"):
        webhook_targets.check_url(f"https://{host}/hook", allow_loopback=False)


@pytest.mark.parametrize("host", ["cafe.bad", "0x.example", "8.8.8.8", "0x08080808", "deadbeef"])
def test_names_and_public_addresses_stay_registrable(host: str) -> None:
    assert webhook_targets.check_url(f"https://{host}/hook", allow_loopback=False)


def test_production_refuses_loopback_webhook_targets() -> None:
    problems = KycTierSettings.validate(
        dataclasses.replace(_settings(), environment="production", webhook_allow_loopback=True)
    )
    assert ("webhook_allow_loopback", "production refuses loopback webhook targets") in problems


def _settings() -> KycTierSettings:
    return load_settings(KycTierSettings, mesh.KYC_TIER.env_prefix, kyc_tier_env("sqlite:///x.db"))
