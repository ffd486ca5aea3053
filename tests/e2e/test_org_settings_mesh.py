"""Organisation settings and Dukcapil portraits end to end, through the REST
gateway on real models and the real services against PostgreSQL (one mesh
for the module).

- A Dukcapil verdict carrying the registry's portrait (a photo of faces/img1's
  person) becomes the customer's `dukcapil` reference and displaces the
  onboarding selfie (it ranks first); unusable portraits are refused with
  their reason and write nothing. A portrait of another person than the
  customer's verified face is refused (409 PORTRAIT_MISMATCH, audited) and
  leaves the reference and step-up as they were (probe4 finding 2).
- The organisation's match threshold, set by its internal-scope key, changes
  the step-up decision for a borderline genuine pair (the same person on
  another photo, scoring between the default threshold and the maximum):
  allowed at the default, denied above its score, allowed again at the
  default; each change audited under the key.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.test_onboarding import KTP_NIK, Partner, selfie
from tests.support.biometrics import FACES, jpeg, photo
from tests.support.gateway import assert_documented, assert_error, create_org_and_key
from tests.support.mesh import running_mesh

pytestmark = [pytest.mark.models, pytest.mark.postgres, pytest.mark.slow]

SETTINGS = "/api/identity/org/settings"


@pytest.fixture(scope="module")
async def e2e(tmp_path_factory):
    async with running_mesh(tmp_path_factory.mktemp("orgs")) as mesh:
        yield mesh


@pytest.fixture(scope="module")
async def bank(e2e) -> dict[str, Any]:
    """An organisation (internal-scope key) and a customer whose reference is
    the onboarding selfie of img1's person (img4: img1 itself reads below the
    true-resolution gate), then the Dukcapil portrait."""
    org_id, partner, customer_id = await verified_customer(e2e, "Bank Settings", "settings-1")
    return {"org_id": org_id, "partner": partner, "customer_id": customer_id}


async def verified_customer(e2e, org_name: str, external_id: str) -> tuple[str, Partner, str]:
    """A new organisation (internal-scope key) and a customer verified live as
    img1's person (selfie img4): the onboarding selfie is their reference."""
    org_id, _, secret = await asyncio.to_thread(
        create_org_and_key, e2e.database_url, org_name, ("public", "internal")
    )
    partner = Partner(e2e, secret)
    customer_id = await partner.new_customer(external_id, KTP_NIK)
    live = await partner.liveness(customer_id, selfie("img4.jpg"))
    assert live["verification"]["outcome"] == "VERIFICATION_OUTCOME_PASSED", live
    return org_id, partner, customer_id


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def verdict_body(customer_id: str, portrait: bytes, nik_matches: bool = True) -> dict[str, Any]:
    return {
        "customerId": customer_id,
        "verdict": {
            "fieldMatches": {"nik": nik_matches, "full_name": True, "birth_date": True},
            "reference": "DKC-2026-7",
            "verifiedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "portrait": {"data": b64(portrait)},
    }


async def enrollments(partner: Partner, customer_id: str) -> list[dict[str, Any]]:
    found = await partner.ok("GET", f"/api/identity/face/enrollments?customerId={customer_id}")
    return found.get("enrollments", [])


async def test_an_unusable_portrait_is_refused_with_its_reason_and_writes_nothing(bank) -> None:
    partner: Partner = bank["partner"]
    customer_id = bank["customer_id"]
    before = await enrollments(partner, customer_id)
    for portrait, reasons in (
        (jpeg(photo(FACES / "couple.jpg")), "MULTIPLE_FACES"),
        (jpeg(photo(FACES / "couple.jpg")[:40, :40]), "FACE_NOT_FOUND"),
    ):
        error = assert_error(
            await partner.post("/api/identity/nik/dukcapil", verdict_body(customer_id, portrait)),
            400,
            "PORTRAIT_UNUSABLE",
        )
        assert reasons in error["metadata"]["quality_reasons"], error
        assert error["metadata"]["field"] == "portrait.data"
    garbage = await partner.post(
        "/api/identity/nik/dukcapil", verdict_body(customer_id, b"not an image at all")
    )
    assert garbage.status_code == 400, garbage.text
    status = await partner.ok("GET", f"/api/identity/kyc/{customer_id}")
    dukcapil = [r for r in status["requirements"] if r["name"] == "dukcapil_verdict"]
    assert dukcapil and not dukcapil[0].get("satisfied", False)  # no verification recorded
    assert await enrollments(partner, customer_id) == before


async def test_a_negative_verdict_enrolls_nothing(e2e) -> None:
    _, _, secret = await asyncio.to_thread(
        create_org_and_key, e2e.database_url, "Bank Negative", ("public",)
    )
    partner = Partner(e2e, secret)
    customer_id = await partner.new_customer("negative-1", KTP_NIK)
    reply = await partner.ok(
        "POST",
        "/api/identity/nik/dukcapil",
        verdict_body(customer_id, jpeg(selfie("img1.jpg")), nik_matches=False),
    )
    assert reply["verification"]["outcome"] == "VERIFICATION_OUTCOME_FAILED"
    assert await enrollments(partner, customer_id) == []


async def test_the_dukcapil_portrait_becomes_the_reference_and_ranks_first(bank) -> None:
    partner: Partner = bank["partner"]
    customer_id = bank["customer_id"]
    [selfie_ref] = await enrollments(partner, customer_id)
    assert selfie_ref["source"] == "ENROLLMENT_SOURCE_ONBOARDING_SELFIE" and selfie_ref["active"]
    reply = await partner.ok(
        "POST", "/api/identity/nik/dukcapil", verdict_body(customer_id, jpeg(selfie("img6.jpg")))
    )
    assert reply["verification"]["outcome"] == "VERIFICATION_OUTCOME_PASSED", reply
    assert reply["tier"] == "KYC_TIER_STANDARD"
    found = {e["source"]: e for e in await enrollments(partner, customer_id)}
    dukcapil = found["ENROLLMENT_SOURCE_DUKCAPIL"]
    assert dukcapil["active"] is True
    assert dukcapil["verificationId"] == reply["verification"]["verificationId"]
    assert found["ENROLLMENT_SOURCE_ONBOARDING_SELFIE"].get("active", False) is False


async def test_a_portrait_of_another_person_is_refused_and_the_verified_face_kept(e2e) -> None:
    """A customer verified live as img1's person (selfie img4): a positive
    verdict carrying img3's person as the registry portrait is refused and
    changes nothing (the reference, the tier, who step-up allows); the
    refusal is a refused attempt and a denied audit entry. The registry's
    portrait of the customer (img6, img1's person) is enrolled as before."""
    _, partner, customer_id = await verified_customer(e2e, "Bank Portraits", "portrait-1")
    before = await enrollments(partner, customer_id)
    assert [(e["source"], e["active"]) for e in before] == [
        ("ENROLLMENT_SOURCE_ONBOARDING_SELFIE", True)
    ]

    refused = await partner.post(
        "/api/identity/nik/dukcapil", verdict_body(customer_id, jpeg(selfie("img3.jpg")))
    )

    error = assert_error(refused, 409, "PORTRAIT_MISMATCH")
    assert error["status"] == "FAILED_PRECONDITION"
    assert error["metadata"]["field"] == "portrait.data"
    assert_documented(refused)
    assert await enrollments(partner, customer_id) == before
    status = await partner.ok("GET", f"/api/identity/kyc/{customer_id}")
    dukcapil = [r for r in status["requirements"] if r["name"] == "dukcapil_verdict"]
    assert dukcapil and not dukcapil[0].get("satisfied", False)  # no verification recorded
    attempts = await partner.ok("GET", f"/api/identity/customers/{customer_id}/attempts")
    refusals = [
        r["code"]
        for a in attempts["attempts"]
        if a["outcome"] == "ATTEMPT_OUTCOME_REFUSED"
        for r in a["reasons"]
    ]
    assert refusals == ["PORTRAIT_MISMATCH"]
    await e2e.drain_audit()
    logged = await partner.ok("GET", "/api/identity/audit-log?action=dukcapil.submit")
    assert [(e["outcome"], e["details"]["reason"]) for e in logged["entries"]] == [
        ("OUTCOME_DENIED", "PORTRAIT_MISMATCH")
    ]

    for image, allowed in (("img2.jpg", True), ("img3.jpg", False)):
        response, _, _ = await partner.step_up(customer_id, selfie(image))
        assert response.status_code == 200, response.text
        assert response.json()["allow"] is allowed, (image, response.json())

    accepted = await partner.ok(
        "POST", "/api/identity/nik/dukcapil", verdict_body(customer_id, jpeg(selfie("img6.jpg")))
    )
    assert accepted["verification"]["outcome"] == "VERIFICATION_OUTCOME_PASSED", accepted
    found = {e["source"]: e["active"] for e in await enrollments(partner, customer_id)}
    assert found["ENROLLMENT_SOURCE_DUKCAPIL"] is True


async def test_the_org_threshold_changes_the_step_up_decision_and_is_audited(e2e, bank) -> None:
    partner: Partner = bank["partner"]
    customer_id = bank["customer_id"]
    settings = (await partner.ok("GET", SETTINGS))["settings"]["matchThreshold"]
    assert settings["isDefault"] is True
    assert 0 < settings["falseMatchRate"] < 1e-3 and settings["calibrationId"]

    async def step_up() -> dict[str, Any]:
        response, _, _ = await partner.step_up(customer_id, selfie("img2.jpg"))
        assert response.status_code == 200, response.text
        return response.json()

    allowed = await step_up()
    assert allowed["allow"] is True, allowed
    score = allowed["scores"]["match"]["score"]
    assert settings["threshold"] <= score < settings["maxThreshold"] - 0.06, score
    stricter = round(score + 0.05, 3)
    changed = await partner.client.put(
        f"{SETTINGS}/match-threshold", json={"threshold": stricter}, headers=partner.headers
    )
    assert changed.status_code == 200, changed.text
    shown = changed.json()["settings"]["matchThreshold"]
    assert shown["threshold"] == pytest.approx(stricter)
    assert shown["falseMatchRate"] <= settings["falseMatchRate"]

    denied = await step_up()
    assert denied["allow"] is False, denied
    assert "FACE_MISMATCH" in {r["code"] for r in denied["reasons"]}
    assert denied["scores"]["match"]["threshold"] == pytest.approx(stricter)

    back = await partner.client.put(
        f"{SETTINGS}/match-threshold", json={"useDefault": True}, headers=partner.headers
    )
    assert back.status_code == 200, back.text
    assert (await step_up())["allow"] is True

    # The other settings' changes reach the audit chain too (no entry stalls the relay).
    hook = await partner.ok(
        "POST",
        "/api/identity/webhooks",
        {"url": "https://hooks.example.com/identity", "events": ["customer.erased"]},
    )
    chosen = await partner.client.put(
        f"{SETTINGS}/default-webhook",
        json={"webhookId": hook["webhook"]["webhookId"]},
        headers=partner.headers,
    )
    assert chosen.status_code == 200, chosen.text
    await e2e.drain_audit()
    for action in ("webhook.create", "org.default_webhook"):
        logged = await partner.ok("GET", f"/api/identity/audit-log?action={action}")
        assert len(logged["entries"]) == 1, action
    entries = (await partner.ok("GET", "/api/identity/audit-log?action=org.match_threshold"))[
        "entries"
    ]
    assert len(entries) == 2
    actors = {e["actor"] for e in entries}
    assert len(actors) == 1 and actors.pop().startswith("api_key:")  # who: the caller's key
    assert sorted(e["details"]["new"] for e in entries)[-1] == "default"
