# ruff: noqa: F811 - the module fixtures of test_webhooks are imported, then requested by name
"""An organisation's settings through the REST gateway, on both databases
(kyc-tier on port 0 with fake model ports, as in test_webhooks; matching's
threshold range and calibration answered by the fake matcher): read, the
match threshold bounded and shown with its false-match rate, the Dukcapil
evidence secret set / rotated (shown once) / cleared and then required of
verdicts, the default webhook endpoint; internal scope only, every change
audited under the caller, never a secret in a response or an audit entry."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from identity_runtime import signing
from services.kyc_tier import models
from services.kyc_tier.flows.dukcapil import DukcapilVerdict, evidence_document
from tests.service.test_webhooks import (  # noqa: F401 - the shared module fixtures
    client,
    database_url,
    fakes,
    kyc_tier,
    receiver,
)
from tests.support import unique_name
from tests.support.gateway import add_key, assert_error, bearer, create_org_and_key
from tests.support.kyc_fakes import rows_in

pytestmark = [pytest.mark.postgres]

SETTINGS = "/api/identity/org/settings"
NIK = "3273024107950003"


async def _org(database_url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """A new organisation: (org id, internal-scope headers, public-scope headers)."""
    org_id, _, internal = await asyncio.to_thread(
        create_org_and_key, database_url, unique_name("Org"), ("public", "internal")
    )
    _, public = await asyncio.to_thread(add_key, database_url, org_id, ("public",))
    return org_id, bearer(internal), bearer(public)


async def _audits(database_url: str, org_id: str, action: str) -> list[Any]:
    found = await rows_in(database_url, models.AuditOutbox, org_id=org_id, action=action)
    return sorted(found, key=lambda a: a.id)


async def test_the_match_threshold_is_bounded_shown_with_its_fmr_and_audited(
    database_url, client
) -> None:
    org_id, headers, _ = await _org(database_url)
    first = await client.get(SETTINGS, headers=headers)
    assert first.status_code == 200, first.text
    settings = first.json()["settings"]
    assert settings["orgId"] == org_id
    assert settings["matchThreshold"] == {
        "threshold": 0.5,
        "isDefault": True,
        "falseMatchRate": 1e-4,
        "defaultThreshold": 0.5,
        "minThreshold": 0.4,
        "maxThreshold": 0.95,
        "calibrationId": "fake-calibration",
    }
    assert settings.get("dukcapilEvidenceSecretSet", False) is False

    changed = await client.put(
        f"{SETTINGS}/match-threshold", json={"threshold": 0.7}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    shown = changed.json()["settings"]["matchThreshold"]
    assert shown["threshold"] == pytest.approx(0.7) and shown.get("isDefault", False) is False
    assert (await client.get(SETTINGS, headers=headers)).json()["settings"]["matchThreshold"][
        "threshold"
    ] == pytest.approx(0.7)
    back = await client.put(
        f"{SETTINGS}/match-threshold", json={"useDefault": True}, headers=headers
    )
    assert back.json()["settings"]["matchThreshold"]["isDefault"] is True
    audits = await _audits(database_url, org_id, "org.match_threshold")
    assert [(a.details["old"], a.details["new"]) for a in audits][1] == (
        audits[0].details["new"],
        "default",
    )
    assert audits[0].details["old"] == "default"
    assert float(audits[0].details["new"]) == pytest.approx(0.7)
    assert all(a.actor.startswith("api_key:") for a in audits) and len(audits) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"threshold": 0.2},  # below the range matching accepts
        {"threshold": 0.99},  # above it
        {},
        {"threshold": 0.6, "useDefault": True},
    ],
)
async def test_threshold_refusals_write_nothing(database_url, client, body) -> None:
    org_id, headers, _ = await _org(database_url)
    error = assert_error(
        await client.put(f"{SETTINGS}/match-threshold", json=body, headers=headers),
        400,
        "INVALID_FIELD",
    )
    assert error["metadata"]["field"] == "threshold"
    [org] = await rows_in(database_url, models.Org, org_id=org_id)
    assert org.match_threshold is None
    assert await _audits(database_url, org_id, "org.match_threshold") == []


async def test_settings_need_an_internal_scope_key(database_url, client) -> None:
    org_id, _, public = await _org(database_url)
    for method, path, body in (
        ("GET", SETTINGS, None),
        ("PUT", f"{SETTINGS}/match-threshold", {"threshold": 0.7}),
        (
            "PUT",
            f"{SETTINGS}/dukcapil-evidence-secret",
            {"secret": base64.b64encode(b"k" * 40).decode()},
        ),
        ("POST", f"{SETTINGS}/dukcapil-evidence-secret/rotate", {}),
        ("PUT", f"{SETTINGS}/default-webhook", {"webhookId": ""}),
    ):
        response = await client.request(method, path, json=body, headers=public)
        assert_error(response, 403, "SCOPE_INSUFFICIENT")
        assert (await client.request(method, path, json=body)).status_code == 401
    [org] = await rows_in(database_url, models.Org, org_id=org_id)
    assert (org.match_threshold, org.evidence_secret_sealed) == (None, None)


def _verdict(customer_id: str) -> tuple[dict[str, Any], bytes]:
    verified_at = datetime.now(UTC).replace(microsecond=0)
    body = {
        "fieldMatches": {"nik": True, "full_name": True},
        "reference": "DKC-1",
        "verifiedAt": verified_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    document = evidence_document(
        customer_id,
        DukcapilVerdict({"nik": True, "full_name": True}, 0.0, "DKC-1", verified_at),
        verified_at,
    )
    return body, document


async def _submit(client, headers, customer_id: str, secret: bytes) -> Any:
    verdict, document = _verdict(customer_id)
    return await client.post(
        "/api/identity/nik/dukcapil",
        json={
            "customerId": customer_id,
            "verdict": verdict,
            "signature": signing.sign(secret, document),
        },
        headers=headers,
    )


async def test_the_evidence_secret_is_set_rotated_shown_once_and_then_required(
    database_url, client
) -> None:
    org_id, headers, _ = await _org(database_url)
    created = await client.post(
        "/api/customers",
        json={"externalId": unique_name("ext"), "fullName": "Siti Rahayu", "nik": NIK},
        headers=headers,
    )
    customer_id = created.json()["customer"]["customerId"]
    chosen = b"partner-chosen-evidence-secret-0123456789"
    put = await client.put(
        f"{SETTINGS}/dukcapil-evidence-secret",
        json={"secret": base64.b64encode(chosen).decode()},
        headers=headers,
    )
    assert put.status_code == 200, put.text
    assert put.json()["settings"]["dukcapilEvidenceSecretSet"] is True
    assert put.json()["settings"]["dukcapilEvidenceSecretUpdatedAt"]
    assert base64.b64encode(chosen).decode() not in put.text  # never shown back
    assert (await _submit(client, headers, customer_id, chosen)).status_code == 200

    rotated = await client.post(
        f"{SETTINGS}/dukcapil-evidence-secret/rotate", json={}, headers=headers
    )
    assert rotated.status_code == 200, rotated.text
    new_secret = base64.b64decode(rotated.json()["secret"])
    assert len(new_secret) == 32
    shown = await client.get(SETTINGS, headers=headers)
    assert rotated.json()["secret"] not in shown.text  # shown once
    assert_error(
        await _submit(client, headers, customer_id, chosen), 403, "EVIDENCE_SIGNATURE_INVALID"
    )
    assert (await _submit(client, headers, customer_id, new_secret)).status_code == 200

    cleared = await client.put(
        f"{SETTINGS}/dukcapil-evidence-secret", json={"clear": True}, headers=headers
    )
    assert cleared.json()["settings"].get("dukcapilEvidenceSecretSet", False) is False
    audits = await _audits(database_url, org_id, "org.evidence_secret")
    assert [(a.outcome, a.details) for a in audits] == [
        ("success", {"change": "set"}),
        ("success", {"change": "rotated"}),
        ("success", {"change": "cleared"}),
    ]
    for audit in audits:
        assert audit.actor.startswith("api_key:")
        assert chosen.decode() not in repr(audit.__dict__)


@pytest.mark.parametrize(
    "body",
    [
        {"secret": base64.b64encode(b"short").decode()},
        {"secret": base64.b64encode(b"k" * 257).decode()},
        {},
        {"secret": base64.b64encode(b"k" * 40).decode(), "clear": True},
    ],
)
async def test_evidence_secret_refusals_write_nothing(database_url, client, body) -> None:
    org_id, headers, _ = await _org(database_url)
    error = assert_error(
        await client.put(f"{SETTINGS}/dukcapil-evidence-secret", json=body, headers=headers),
        400,
        "INVALID_FIELD",
    )
    assert error["metadata"]["field"] == "secret"
    [org] = await rows_in(database_url, models.Org, org_id=org_id)
    assert org.evidence_secret_sealed is None
    assert await _audits(database_url, org_id, "org.evidence_secret") == []


async def test_the_default_webhook_is_one_of_the_organisations_endpoints(
    database_url, client, receiver
) -> None:
    org_id, headers, _ = await _org(database_url)
    _, other, _ = await _org(database_url)
    mine = await client.post(
        "/api/identity/webhooks",
        json={"url": receiver.url(), "events": ["customer.erased"]},
        headers=headers,
    )
    theirs = await client.post(
        "/api/identity/webhooks",
        json={"url": receiver.url(), "events": ["customer.erased"]},
        headers=other,
    )
    mine_id = mine.json()["webhook"]["webhookId"]
    for webhook_id in ("whk_unknown", theirs.json()["webhook"]["webhookId"]):
        assert_error(
            await client.put(
                f"{SETTINGS}/default-webhook", json={"webhookId": webhook_id}, headers=headers
            ),
            404,
            "WEBHOOK_NOT_FOUND",
        )
    chosen = await client.put(
        f"{SETTINGS}/default-webhook", json={"webhookId": mine_id}, headers=headers
    )
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["settings"]["defaultWebhookId"] == mine_id
    [hook] = (await client.get("/api/identity/webhooks", headers=headers)).json()["webhooks"]
    assert hook["isDefault"] is True
    cleared = await client.put(
        f"{SETTINGS}/default-webhook", json={"webhookId": ""}, headers=headers
    )
    assert cleared.json()["settings"].get("defaultWebhookId", "") == ""
    # Deleting the default endpoint clears the setting.
    await client.put(f"{SETTINGS}/default-webhook", json={"webhookId": mine_id}, headers=headers)
    await client.delete(f"/api/identity/webhooks/{mine_id}", headers=headers)
    assert (await client.get(SETTINGS, headers=headers)).json()["settings"].get(
        "defaultWebhookId", ""
    ) == ""
    audits = await _audits(database_url, org_id, "org.default_webhook")
    assert [a.details for a in audits] == [
        {"old": "none", "new": mine_id},
        {"old": mine_id, "new": "none"},
        {"old": "none", "new": mine_id},
    ]
