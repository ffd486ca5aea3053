"""Webhooks end to end on `identity up` (the README's run command, here on
PostgreSQL): a real local receiver sees signed deliveries for a whole
onboarding (none -> basic -> standard -> premium) plus a step-up, each event
exactly once after deduplicating by event id, and killing kyc-tier (SIGKILL)
between the decisions and their delivery loses none.

kyc-tier's dispatcher runs here with a one-hour poll, so it sends only when
it starts: every event of the flow is committed with its change and still
undelivered when kyc-tier is killed; `identity up` restarts it and its first
pass delivers them all. Both signature headers verify with the endpoint's
secret (shown once at creation).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from identity_runtime import signing
from identity_store.db import Database
from services.kyc_tier import models
from tests.e2e.test_cli_up import IDENTITY, child_pid, up_environment, wait_for_line
from tests.e2e.test_onboarding import KTP_NIK, Partner, card_capture, selfie
from tests.service.test_webhooks import Receiver
from tests.support import TESTDATA
from tests.support.mesh import postgres_schema

pytestmark = [pytest.mark.slow, pytest.mark.models, pytest.mark.postgres]

EVENTS = ["verification.completed", "kyc.tier_changed", "stepup.decided"]


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp_path = tmp_path_factory.mktemp("webhooks-up")
    env, ports = up_environment(tmp_path)
    env["KYC_TIER_WEBHOOK_POLL_SECONDS"] = "3600"
    # Delivery is under test, not latency: a loaded 2-core machine may take
    # longer than the 10 s default over a cold KTP capture.
    env["GATEWAY_DEFAULT_DEADLINE_SECONDS"] = "60"
    env["KYC_TIER_DEFAULT_DEADLINE_SECONDS"] = "60"
    with postgres_schema() as url:
        process = subprocess.Popen(
            [IDENTITY, "up", "--database-url", url],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            printed = "\n".join(wait_for_line(process, "press Ctrl-C", timeout=300))
            key = re.search(r"API key +(idk_\S+)", printed)
            assert key, printed
            yield {
                "process": process,
                "url": url,
                "gateway": f"http://127.0.0.1:{ports['GATEWAY']}",
                "key": key.group(1),
            }
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(60)


def received_events(receiver: Receiver, secret: str) -> dict[str, dict[str, Any]]:
    """The receiver's deliveries, each verified with both headers, by event id."""
    seen: dict[str, dict[str, Any]] = {}
    for _, headers, body in receiver.requests:
        for header in ("X-Identity-Signature", "X-Quantum-Signature"):
            assert signing.verify(secret.encode(), body, headers[header]), header
        event = json.loads(body)
        assert headers["X-Identity-Event-Id"] == event["id"]
        seen.setdefault(event["id"], event)
    return seen


def outbox_events(url: str, webhook_id: str) -> list[models.WebhookDelivery]:
    database = Database(url)
    try:
        with database.transaction() as session:
            query = select(models.WebhookDelivery).where(
                models.WebhookDelivery.webhook_id == webhook_id
            )
            return list(session.scalars(query))
    finally:
        database.dispose()


async def test_onboarding_and_step_up_events_arrive_signed_once_despite_a_kyc_tier_kill(
    up: dict[str, Any],
) -> None:
    receiver = Receiver()
    try:
        async with httpx.AsyncClient(base_url=up["gateway"], timeout=120) as client:
            partner = Partner(SimpleNamespace(client=client), up["key"])  # type: ignore[arg-type]
            created = await partner.ok(
                "POST", "/api/identity/webhooks", {"url": receiver.url(), "events": EVENTS}
            )
            webhook_id, secret = created["webhook"]["webhookId"], created["signingSecret"]

            customer_id = await partner.new_customer("webhooks-up-1", KTP_NIK)
            challenge = await partner.challenge(customer_id, "ktp")
            card = (TESTDATA / "ktp" / "ktp_captured.jpg").read_bytes()
            ktp = await partner.ok(
                "POST",
                "/api/identity/document/ktp/capture",
                {
                    "customerId": customer_id,
                    "challengeId": challenge["challengeId"],
                    "bundle": card_capture(partner.signer, challenge, card),
                    "ocrFields": {
                        "nik": KTP_NIK,
                        "fullName": "SITI RAHAYU",
                        "birthDate": "1995-07-01",
                        "gender": "female",
                    },
                },
            )
            assert ktp["tier"] == "KYC_TIER_STANDARD", ktp
            live = await partner.liveness(customer_id, selfie("img2.jpg"))
            match = await partner.ok(
                "POST",
                "/api/identity/face/match",
                {
                    "customerId": customer_id,
                    "livenessVerificationId": live["verification"]["verificationId"],
                },
            )
            assert match["tier"] == "KYC_TIER_PREMIUM", match
            stepped, _, _ = await partner.step_up(customer_id, selfie("img4.jpg"))
            assert stepped.status_code == 200 and stepped.json()["allow"] is True, stepped.text

            # Every decision is committed with its event; none is delivered yet.
            queued = outbox_events(up["url"], webhook_id)
            assert queued and {d.state for d in queued} == {"pending"}
            assert receiver.requests == []

            # kyc-tier dies before delivering; `identity up` restarts it.
            process = up["process"]
            os.kill(child_pid(process.pid, "services.kyc_tier"), signal.SIGKILL)
            await asyncio.to_thread(wait_for_line, process, "kyc-tier restarted", 120)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                states = {d.state for d in outbox_events(up["url"], webhook_id)}
                if states == {"delivered"}:
                    break
                await asyncio.sleep(0.5)
            assert states == {"delivered"}, states
    finally:
        receiver.close()

    events = received_events(receiver, secret)
    assert set(events) == {d.event_id for d in queued}  # each event, none lost
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in events.values():
        assert event["data"]["customer_id"] == customer_id
        by_type.setdefault(event["type"], []).append(event)
    tiers = sorted(
        (e["data"]["from_tier"], e["data"]["to_tier"]) for e in by_type["kyc.tier_changed"]
    )
    assert tiers == [("basic", "standard"), ("none", "basic"), ("standard", "premium")]
    kinds = {e["data"]["kind"] for e in by_type["verification.completed"]}
    assert {"ktp_capture", "face_liveness", "face_match"} <= kinds
    [step_up] = by_type["stepup.decided"]
    assert step_up["data"]["verification_id"] == stepped.json()["verificationId"]
    assert step_up["data"]["outcome"] == "passed"
    # At least once: a resend carries the same id, so counting ids counts events.
    assert len(receiver.requests) >= len(events)
    for body in (b for _, _, b in receiver.requests):
        assert KTP_NIK.encode() not in body and b"SITI" not in body
