"""The analyst console in headless Chromium (Debian's chromium through the
SDK's pinned playwright-core, driven by tests/e2e/console_browser.mjs): the
real gateway on a socket at http://localhost:<port>, kyc-tier (fake
downstream ports) on PostgreSQL with its WebAuthn relying party set to that
origin, and Chrome's virtual authenticator. Password sign-in, a passkey
added and used to sign in, the persona searched and their page opened, a
duplicate-face review approved (the tier rises; sent again after its answer
was lost, with the same Idempotency-Key: decided once), a customer export
downloaded, the webhook log read, and an admin revoking the customer's device
and SDK session from the customer page. Screenshots are kept in .build/test-artefacts/console/.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.server import start
from services.kyc_tier import models, sdk_models
from services.kyc_tier.bootstrap import build
from services.kyc_tier.service import SPEC
from tests.service.test_console_auth import PASSWORD, create_user
from tests.service.test_console_dashboard import held_for_review
from tests.service.test_console_portraits import SELFIE, seal_capture
from tests.service.test_console_webhooks import failed_delivery
from tests.support import REPO_ROOT, kyc_tier_env, start_service, unavailable, unique_name
from tests.support.gateway import bearer, create_org_and_key, gateway_settings
from tests.support.kyc_fakes import KycFakes
from tests.support.kyc_fakes import rows as table_rows
from tests.support.mesh import postgres_schema

pytestmark = pytest.mark.slow

SDK = REPO_ROOT / "sdk" / "web"
ARTEFACTS = REPO_ROOT / ".build" / "test-artefacts" / "console"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
PERSONA = {"fullName": "Siti Rahayu", "nik": "3273024107950003", "email": "siti@mail.example"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _require_browser() -> None:
    if shutil.which("node") is None:
        unavailable("node", "not installed")
    if not CHROMIUM.exists():
        unavailable("chromium", f"not installed at {CHROMIUM}")
    if not (SDK / "node_modules" / "playwright-core").is_dir():
        unavailable("playwright-core", "sdk/web/node_modules is not installed")


async def test_an_analyst_works_the_console_in_a_real_browser() -> None:
    _require_browser()
    port = _free_port()
    origin = f"http://localhost:{port}"
    fakes = KycFakes()

    async def build_with_fakes(settings: Any) -> Any:
        return await build(settings, overrides=fakes.overrides())

    with postgres_schema() as url:
        env = kyc_tier_env(url) | {
            "KYC_TIER_WEBAUTHN_RP_ID": "localhost",
            "KYC_TIER_WEBAUTHN_ORIGINS": origin,
        }
        kyc = await start_service(dataclasses.replace(SPEC, build=build_with_fakes), env)
        gateway = await start(
            gateway_settings({"kyc_tier": kyc.address}, host="127.0.0.1", port=str(port))
        )
        try:
            org_id, _, key = await asyncio.to_thread(
                create_org_and_key, url, unique_name("Bank"), ("internal",)
            )
            email = f"{unique_name('analyst').lower()}@bank.example"
            assert await asyncio.to_thread(create_user, url, org_id, email) == 0
            admin_email = f"{unique_name('admin').lower()}@bank.example"
            assert await asyncio.to_thread(create_user, url, org_id, admin_email, "admin") == 0
            async with httpx.AsyncClient(base_url=origin, timeout=30) as http:
                body = {"externalId": unique_name("ext"), **PERSONA}
                created = await http.post("/api/customers", json=body, headers=bearer(key))
                assert created.status_code == 200, created.text
                hook = {
                    "url": "https://hooks.bank.example/identity",
                    "events": ["kyc.tier_changed"],
                }
                made = await http.post("/api/identity/webhooks", json=hook, headers=bearer(key))
                assert made.status_code == 200, made.text
                customer_id = created.json()["customer"]["customerId"]
                minted = await http.post(
                    "/api/identity/sdk-sessions",
                    json={"customerId": customer_id},
                    headers=bearer(key),
                )
                assert minted.status_code == 200, minted.text
            session_id = minted.json()["session"]["sessionId"]
            # The customer's phone (liveness's fake keeps the device).
            await fakes.liveness.register_device(customer_id, "phone-1", 1, b"key", "android")
            held = fakes.matcher.enroll_reference(customer_id, active=False)
            await seal_capture(kyc.core, org_id, customer_id, SELFIE)
            review_id = await held_for_review(kyc.core, org_id, customer_id, held)

            await failed_delivery(kyc.core, org_id, made.json()["webhook"]["webhookId"])

            command = ["node", str(REPO_ROOT / "tests" / "e2e" / "console_browser.mjs")]
            command += ["--origin", origin, "--email", email, "--password", PASSWORD]
            command += ["--persona", PERSONA["fullName"], "--shots", str(ARTEFACTS)]
            command += ["--sdk", str(SDK), "--chromium", str(CHROMIUM)]
            command += ["--admin-email", admin_email, "--customer", customer_id]
            done = await asyncio.to_thread(
                subprocess.run, command, capture_output=True, text=True, timeout=240
            )
            decided = await table_rows(kyc.core, models.AuditOutbox, action="review.decide")
            raised = await table_rows(kyc.core, models.TierEvent, customer_id=customer_id)
            sessions = await table_rows(kyc.core, sdk_models.SdkSession, session_id=session_id)
            revocations = await table_rows(kyc.core, models.AuditOutbox, action="device.revoke")
        finally:
            await gateway.stop()
            await kyc.stop(0)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in result, result["error"]
    assert result["pageErrors"] == [], result
    # The refusals: who is signed in, asked before anyone is,
    # and the portrait of the named duplicate, which has no retained capture.
    assert result["failedRequests"] == [
        "401 /api/auth/me",
        f"404 /api/identity/review-queue/{review_id}/portraits/cus_x",
    ]
    assert result["steps"] == [
        "password sign-in",
        "passkey added",
        "passkey sign-in",
        "customer page",
        "review decided",
        "export downloaded",
        "webhook log read",
        "device and session revoked",
    ]
    assert "passkeys: 1" in result["who"]
    assert any("S*** R*****" in row for row in result["searchResults"])
    assert result["customerTier"] == "basic"
    assert result["portraits"] == [["This customer", True]]
    assert result["missingPortraits"] == ["No retained capture."]
    assert "now standard" in result["decision"]
    # The approval sent twice (its first answer lost after it was recorded):
    # one key for the one action, the second answered with the first response,
    # one decision and one tier change.
    assert result["lostAnswerStatus"] == 200
    assert "Decision refused" in result["lostAnswer"]
    first_key, second_key = result["decisionKeys"]
    assert first_key == second_key
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", first_key
    )
    assert [(e.org_id, e.outcome) for e in decided] == [(org_id, "success")]
    assert [(e.from_tier, e.to_tier) for e in raised if e.cause == "review_decision"] == [
        ("basic", "standard")
    ]
    lines = result["csv"].splitlines()
    assert lines[0].startswith("customer_id,external_id,full_name")
    assert customer_id in result["csv"] and PERSONA["nik"] not in result["csv"]
    assert result["webhooks"] == ["https://hooks.bank.example/identity"]
    # 17:30 UTC is 00:30 WIB on the 27th: the range runs to the start of the 28th in
    # WIB (it ended at 17:00 UTC, before the customers of the last hours, when the
    # fields were filled with UTC dates).
    assert result["exportDatesAfterWibMidnight"] == ["2026-10-28", "2026-11-28"]
    # The failed delivery made beforehand, and the one the approval queued (the
    # dispatcher may already have tried that one, so only its event is fixed).
    rows = [row[1:5] for row in result["deliveries"]]
    assert len(rows) == 2, result["deliveries"]
    assert ["kyc.tier_changed", "retrying", "1", "503"] in rows, result["deliveries"]
    queued = next(row for row in rows if row != ["kyc.tier_changed", "retrying", "1", "503"])
    assert queued[0] == "kyc.tier_changed" and queued[1] in {"pending", "retrying"}, rows
    # The admin's customer page: the device and the session, open, each
    # revoked after a confirmation (the analyst's page asked for neither: the
    # failed requests above would show their 403s).
    assert [row[0] for row in result["devicesBefore"]] == ["phone-1"]
    assert result["devicesBefore"][0][4:] == ["active", "Revoke"]
    assert result["devicesAfter"][0][4].startswith("revoked ")
    assert result["devicesAfter"][0][5] == ""
    assert [row[0] for row in result["sessionsBefore"]] == [session_id]
    assert result["sessionsBefore"][0][4:] == ["open", "Revoke"]
    assert result["sessionsAfter"][0][4:] == ["revoked", ""]
    assert len(result["confirmations"]) == 2
    assert fakes.liveness.devices[customer_id]["phone-1"].revoked_at is not None
    assert [s.revoked_at is not None for s in sessions] == [True]
    assert [(e.org_id, e.outcome) for e in revocations] == [(org_id, "success")]
    for name in ("02-signed-in-with-passkey", "03-search", "04-customer", "05-review-queue"):
        assert (ARTEFACTS / f"{name}.png").stat().st_size > 0
