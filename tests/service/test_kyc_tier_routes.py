"""Upgrade, erasure and the customer and attempt lists through the REST
gateway, on both databases: kyc-tier served on port 0 with fake ports
(matching's retire and shred), the real gateway in front. Upgrade and erasure
used to answer 500 whenever they should succeed.
"""

from __future__ import annotations

import asyncio
import dataclasses
from math import isclose
from typing import Any

import pytest
from sqlalchemy import update

from identity_cli.main import main as identity_main
from identity_cli.schema import migrate_all
from identity_store.db import Database
from services.kyc_tier import models, records
from services.kyc_tier.bootstrap import build
from services.kyc_tier.ports import Reason
from services.kyc_tier.service import SPEC
from tests.support import kyc_tier_env, start_service, unique_name
from tests.support.gateway import (
    add_key,
    assert_documented,
    assert_error,
    bearer,
    create_org_and_key,
    gateway_client,
    gateway_settings,
)
from tests.support.kyc_fakes import KycFakes, assert_audit_entries_acceptable, rows
from tests.support.mesh import postgres_schema

VALID_NIK = "3273024107950003"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "postgres":
        with postgres_schema() as url:
            yield url
        return
    url = f"sqlite:///{tmp_path_factory.mktemp('kyc-routes') / 'identity.db'}"
    migrate_all(url)
    yield url


@pytest.fixture(scope="module")
def fakes() -> KycFakes:
    return KycFakes()


@pytest.fixture(scope="module")
async def kyc_tier(database_url: str, fakes: KycFakes):
    async def build_with_fakes(settings: Any) -> Any:
        return await build(settings, overrides=fakes.overrides())

    server = await start_service(
        dataclasses.replace(SPEC, build=build_with_fakes), kyc_tier_env(database_url)
    )
    yield server
    await server.stop(0)


@pytest.fixture(scope="module")
async def client(kyc_tier):
    async with gateway_client(gateway_settings({"kyc_tier": kyc_tier.address})) as http:
        yield http


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Partner:
    def __init__(self, client: Any, secret: str):
        self.client = client
        self.headers = bearer(secret)

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        return await self.client.post(path, json=body, headers=self.headers)

    async def get(self, path: str) -> Any:
        return await self.client.get(path, headers=self.headers)

    async def new_customer(self, nik: str = VALID_NIK) -> str:
        body = {"externalId": unique_name("ext"), "fullName": "Siti Rahayu", "nik": nik}
        response = await self.post("/api/customers", body)
        assert response.status_code == 200, response.text
        return response.json()["customer"]["customerId"]


async def partner_for(database_url: str, client: Any, *scopes: str) -> tuple[str, Partner]:
    org_id, _, secret = await asyncio.to_thread(
        create_org_and_key, database_url, unique_name("Org"), scopes or ("public",)
    )
    return org_id, Partner(client, secret)


async def test_upgrade_to_a_tier_the_history_reaches_answers_200(database_url, client) -> None:
    _, partner = await partner_for(database_url, client)
    customer_id = await partner.new_customer()
    response = await partner.post(
        f"/api/identity/kyc/{customer_id}/upgrade", {"targetTier": "KYC_TIER_BASIC"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["tier"] == "KYC_TIER_BASIC"
    assert "event" not in response.json()  # the tier was already basic


async def test_upgrade_settles_a_tier_the_history_earns_with_a_tier_event(
    database_url, client, kyc_tier
) -> None:
    _, partner = await partner_for(database_url, client)
    customer_id = await partner.new_customer()
    # The stored tier disagrees with the history (edited in the database):
    # the upgrade recomputes it, as a tier event caused by no verification.
    database = Database(database_url)
    try:
        with database.transaction() as session:
            session.execute(
                update(models.Customer)
                .where(models.Customer.customer_id == customer_id)
                .values(tier="none")
            )
    finally:
        database.dispose()
    response = await partner.post(
        f"/api/identity/kyc/{customer_id}/upgrade", {"targetTier": "KYC_TIER_BASIC"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tier"] == "KYC_TIER_BASIC"
    event = body["event"]
    assert (event["fromTier"], event["toTier"], event["cause"]) == (
        "KYC_TIER_NONE",
        "KYC_TIER_BASIC",
        "recompute",
    )
    assert event["verificationId"] == ""
    core = kyc_tier.core
    audited = await rows(core, models.AuditOutbox, action="kyc.upgrade")
    assert any(e.subject == f"customer:{customer_id}" for e in audited)


async def test_upgrade_refusals(database_url, client) -> None:
    _, partner = await partner_for(database_url, client)
    customer_id = await partner.new_customer()
    upgrade = f"/api/identity/kyc/{customer_id}/upgrade"
    missing = assert_error(
        await partner.post(upgrade, {"targetTier": "KYC_TIER_PREMIUM"}),
        400,
        "TIER_PREREQUISITE_MISSING",
    )
    assert missing["metadata"] == {
        "missing": "ktp_capture_passed_or_dukcapil_verdict,face_liveness,face_match",
        "tier": "basic",
    }
    assert_error(await partner.post(upgrade, {"targetTier": "KYC_TIER_NONE"}), 400, "INVALID_FIELD")
    assert_error(await partner.post(upgrade, {}), 400, "INVALID_FIELD")
    # A number the contract does not define is invalid, not missing.
    unknown = assert_error(await partner.post(upgrade, {"targetTier": 99}), 400, "INVALID_FIELD")
    assert (unknown["metadata"], unknown["message"]) == (
        {"field": "targetTier"},
        "targetTier: unknown value",
    )
    assert_error(
        await partner.post(
            upgrade, {"targetTier": "KYC_TIER_PREMIUM", "reviewId": "rev_x", "note": "ok"}
        ),
        403,
        "SCOPE_INSUFFICIENT",
    )
    assert_error(
        await partner.post(
            "/api/identity/kyc/cus_unknown/upgrade", {"targetTier": "KYC_TIER_BASIC"}
        ),
        404,
        "CUSTOMER_NOT_FOUND",
    )
    _, internal = await partner_for(database_url, client, "public", "internal")
    other = await internal.new_customer()
    assert_error(
        await internal.post(
            f"/api/identity/kyc/{other}/upgrade",
            {"targetTier": "KYC_TIER_PREMIUM", "reviewId": "rev_unknown"},
        ),
        404,
        "REVIEW_NOT_FOUND",
    )
    tier = (await partner.get(f"/api/identity/kyc/{customer_id}")).json()["tier"]
    assert tier == "KYC_TIER_BASIC"


async def held_card_review(database_url: str, org_id: str, customer_id: str) -> str:
    """A KTP capture held for an analyst (a duplicate face): its review item."""
    database = Database(database_url)
    try:
        with database.transaction() as session:
            customer = records.load_customer(session, org_id, customer_id)
            held = records.add_verification(
                session, customer, "ktp_capture", None, (Reason("DUPLICATE_FACE", "held"),)
            )
            item = session.query(models.ReviewItem).filter_by(verification_id=held.verification_id)
            return item.one().review_id
    finally:
        database.dispose()


async def test_an_approved_card_review_upgrades_to_standard_once_never_to_premium(
    database_url, client
) -> None:
    org_id, analyst = await partner_for(database_url, client, "public", "internal")
    customer_id = await analyst.new_customer()
    review_id = await held_card_review(database_url, org_id, customer_id)
    decided = await analyst.post(
        f"/api/identity/review-queue/{review_id}/decision", {"decision": "REVIEW_DECISION_APPROVE"}
    )
    assert decided.status_code == 200, decided.text
    upgrade = f"/api/identity/kyc/{customer_id}/upgrade"

    premium = {"targetTier": "KYC_TIER_PREMIUM", "reviewId": review_id}
    beyond = await analyst.post(upgrade, premium)
    assert assert_error(beyond, 400, "REVIEW_SCOPE_EXCEEDED")["metadata"] == {
        "max_tier": "standard"
    }
    assert_documented(beyond)
    granted = await analyst.post(
        upgrade, {"targetTier": "KYC_TIER_STANDARD", "reviewId": review_id}
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["tier"] == "KYC_TIER_STANDARD"
    for body in (premium, {"targetTier": "KYC_TIER_STANDARD", "reviewId": review_id}):
        again = await analyst.post(upgrade, body)
        assert_error(again, 409, "REVIEW_ALREADY_CITED")
        assert_documented(again)
    kyc = (await analyst.get(f"/api/identity/kyc/{customer_id}")).json()
    assert kyc["tier"] == "KYC_TIER_STANDARD"
    assert kyc["missingForNextTier"] == ["face_liveness", "face_match"]


async def test_erase_answers_with_what_it_destroyed(database_url, client, kyc_tier, fakes) -> None:
    _, partner = await partner_for(database_url, client)
    customer_id = await partner.new_customer()
    fakes.matcher.enroll_reference(customer_id)
    response = await partner.post(
        f"/api/identity/customers/{customer_id}/erase", {"reason": "data_subject_request"}
    )
    assert response.status_code == 200, response.text
    erased = response.json()
    assert erased["customerId"] == customer_id
    assert erased["erasedAt"]
    assert erased["enrollmentsRetired"] == 1
    # matching's template key, and kyc-tier's key sealing the NIK.
    assert erased["keysDestroyed"] == 2
    assert fakes.matcher.shredded >= {customer_id}

    customer = (await partner.get(f"/api/identity/customers/{customer_id}")).json()["customer"]
    assert customer["status"] == "CUSTOMER_STATUS_ERASED"
    assert not customer.get("fullName") and not customer.get("nikMasked")
    assert (await partner.get(f"/api/identity/kyc/{customer_id}")).json()["tier"] == "KYC_TIER_NONE"
    core = kyc_tier.core
    (event,) = [
        e
        for e in await rows(core, models.TierEvent, customer_id=customer_id)
        if e.to_tier == "none"
    ]
    assert (event.from_tier, event.cause, event.verification_id) == ("basic", "erasure", None)
    (audit,) = await rows(
        core, models.AuditOutbox, action="customer.erase", subject=f"customer:{customer_id}"
    )
    assert audit.details["enrollments_retired"] == "1"

    # The receipt: what was destroyed, what is retained and until when.
    assert erased["state"] == "ERASURE_STATE_COMPLETED"
    assert erased["erasureId"].startswith("era_") and erased["requestedAt"]
    # In the order the steps run: kyc-tier's own first (a matching outage
    # must not leave the personal data readable).
    assert erased["destroyed"] == [
        "personal_fields",
        "nik_key",
        "capture_bundle_key",
        "face_references_retired",
        "face_template_key",
        "device_keys",
    ]
    retained = {r["record"]: r for r in erased["retained"]}
    assert set(retained) == {"verifications", "face_enrollment_rows", "audit_log"}
    assert retained["verifications"]["count"] == 1  # the NIK_FORMAT check
    assert retained["verifications"]["counted"] and retained["face_enrollment_rows"]["counted"]
    # Every audit entry about the customer is kept, and the receipt says so
    # instead of counting none: kyc-tier does not count the audit chain.
    audit_log = retained["audit_log"]
    assert (audit_log["counted"], audit_log["count"]) == (False, 0)
    assert audit_log["basis"].startswith("every entry kept, none removed by erasure")
    seven_years = str(int(erased["erasedAt"][:4]) + 7)
    assert all(r["retainedUntil"].startswith(seven_years) for r in retained.values())
    (erasure,) = await rows(core, models.Erasure, customer_id=customer_id)
    assert erasure.state == "completed"
    steps = await rows(core, models.ErasureStep, erasure_id=erasure.erasure_id)
    assert all(step.done_at is not None for step in steps) and len(steps) == 5

    # Erasing again changes nothing and answers the same receipt.
    again = await partner.post(f"/api/identity/customers/{customer_id}/erase", {})
    assert again.status_code == 200, again.text
    assert again.json() == erased


async def test_erase_refusals(database_url, client) -> None:
    _, partner = await partner_for(database_url, client)
    customer_id = await partner.new_customer()
    assert_error(
        await partner.post("/api/identity/customers/cus_unknown/erase", {}),
        404,
        "CUSTOMER_NOT_FOUND",
    )
    _, other = await partner_for(database_url, client)
    assert_error(
        await other.post(f"/api/identity/customers/{customer_id}/erase", {}),
        404,
        "CUSTOMER_NOT_FOUND",
    )
    customer = (await partner.get(f"/api/identity/customers/{customer_id}")).json()["customer"]
    assert customer["status"] == "CUSTOMER_STATUS_ACTIVE"


async def test_an_external_id_in_the_erased_form_is_refused(database_url, client) -> None:
    """`erased:<customer id>` is what an erased customer's external id becomes."""
    _, partner = await partner_for(database_url, client)
    body = {"externalId": "erased:cus_1", "fullName": "Siti Rahayu"}
    error = assert_error(await partner.post("/api/customers", body), 400, "INVALID_FIELD")
    assert error["metadata"]["field"] == "externalId"


async def test_invisible_characters_are_refused_in_ids_and_names(database_url, client) -> None:
    """`user-42` and `user-42` + U+200B would be two customers that look alike:
    identifiers take nothing invisible (no Unicode Cf, line separators or other
    default-ignorables), names only the zero-width (non-)joiner some scripts
    need. 400 INVALID_FIELD naming the field and the code point, nothing written."""
    _, partner = await partner_for(database_url, client)
    external_id = unique_name("user-42")
    named = {"externalId": unique_name("ext")}
    for body, field, code_point in (
        ({"externalId": external_id + "\u200b"}, "externalId", "U+200B"),
        ({"externalId": "user-\u202e24"}, "externalId", "U+202E"),
        ({"externalId": external_id + "\u200d"}, "externalId", "U+200D"),
        ({"externalId": "\ufeff" + external_id}, "externalId", "U+FEFF"),
        ({"externalId": external_id + "\U000e0041"}, "externalId", "U+E0041"),
        ({**named, "fullName": "Siti\u202eRahayu"}, "fullName", "U+202E"),
        ({**named, "fullName": "Siti\u200bRahayu"}, "fullName", "U+200B"),
        ({**named, "fullName": "Siti\u2066Rahayu"}, "fullName", "U+2066"),
        ({**named, "fullName": "Siti\u2028Rahayu"}, "fullName", "U+2028"),
        ({**named, "email": "siti\u200b@example.com"}, "email", "U+200B"),
    ):
        error = assert_error(await partner.post("/api/customers", body), 400, "INVALID_FIELD")
        assert error["metadata"]["field"] == field, body
        assert code_point in error["message"] and "Siti" not in error["message"]
    lookup = await partner.get("/api/identity/customers/cus_1\u200b")
    assert assert_error(lookup, 400, "INVALID_FIELD")["metadata"]["field"] == "customerId"
    assert (await partner.get("/api/customers")).json()["customers"] == []

    plain = await partner.post("/api/customers", {"externalId": external_id})
    assert plain.status_code == 200, plain.text
    # A name in a script that needs a joiner inside a word (Devanagari ksha).
    joined = await partner.post("/api/customers", {**named, "fullName": "\u0915\u094d\u200d\u0937"})
    assert joined.status_code == 200, joined.text
    listed = (await partner.get("/api/customers")).json()["customers"]
    assert len(listed) == 2


async def test_an_erasure_or_legal_hold_reason_in_prose_is_refused(
    database_url, client, kyc_tier, fakes
) -> None:
    """The reason is chained into the audit log, which is never erased."""
    _, internal = await partner_for(database_url, client, "public", "internal")
    customer_id = await internal.new_customer()
    for path, body in (
        ("erase", {"reason": "Siti Rahayu asked by phone"}),
        ("legal-hold", {"hold": True, "reason": "NIK 3171234567890001"}),
        # Codes in shape, but a NIK in groups and a dotted phone number.
        ("legal-hold", {"hold": True, "reason": "3273-0241-0795-0003"}),
        ("legal-hold", {"hold": True, "reason": "0812.3456.7890"}),
    ):
        error = assert_error(
            await internal.post(f"/api/identity/customers/{customer_id}/{path}", body),
            400,
            "INVALID_FIELD",
        )
        assert error["metadata"]["field"] == "reason"
        assert "Siti" not in error["message"] and "3171" not in error["message"]
        assert body["reason"] not in error["message"]
    customer = (await internal.get(f"/api/identity/customers/{customer_id}")).json()["customer"]
    assert customer["status"] == "CUSTOMER_STATUS_ACTIVE" and not customer.get("legalHold")
    assert customer_id not in fakes.matcher.shredded


async def test_a_legal_hold_refuses_erasure_until_it_is_lifted(
    database_url, client, kyc_tier, fakes
) -> None:
    _, internal = await partner_for(database_url, client, "public", "internal")
    customer_id = await internal.new_customer()
    hold = f"/api/identity/customers/{customer_id}/legal-hold"
    held = await internal.post(hold, {"hold": True, "reason": "case-2026-114"})
    assert held.status_code == 200, held.text
    assert held.json()["customer"]["legalHold"] is True

    refused = assert_error(
        await internal.post(f"/api/identity/customers/{customer_id}/erase", {}), 409, "LEGAL_HOLD"
    )
    assert "legal hold" in refused["message"]
    customer = (await internal.get(f"/api/identity/customers/{customer_id}")).json()["customer"]
    assert customer["status"] == "CUSTOMER_STATUS_ACTIVE" and customer["fullName"]
    assert customer_id not in fakes.matcher.shredded
    core = kyc_tier.core
    assert await rows(core, models.Erasure, customer_id=customer_id) == []
    (denied,) = await rows(
        core, models.AuditOutbox, action="customer.erase", subject=f"customer:{customer_id}"
    )
    assert (denied.outcome, denied.details["reason"]) == ("denied", "LEGAL_HOLD")

    lifted = await internal.post(hold, {"hold": False})
    assert lifted.json()["customer"].get("legalHold", False) is False
    erased = await internal.post(f"/api/identity/customers/{customer_id}/erase", {})
    assert erased.status_code == 200, erased.text
    audited = await rows(core, models.AuditOutbox, action="customer.legal_hold")
    mine = sorted(
        (e for e in audited if e.subject == f"customer:{customer_id}"), key=lambda e: e.id
    )
    assert [e.details["hold"] for e in mine] == [
        "True",
        "False",
    ]


async def test_legal_hold_refusals(database_url, client) -> None:
    _, partner = await partner_for(database_url, client)
    customer_id = await partner.new_customer()
    hold = f"/api/identity/customers/{customer_id}/legal-hold"
    assert_error(await partner.post(hold, {"hold": True}), 403, "SCOPE_INSUFFICIENT")
    _, internal = await partner_for(database_url, client, "public", "internal")
    assert_error(await internal.post(hold, {"hold": True}), 404, "CUSTOMER_NOT_FOUND")
    mine = await internal.new_customer()
    long_reason = {"hold": True, "reason": "x" * 65}
    assert_error(
        await internal.post(f"/api/identity/customers/{mine}/legal-hold", long_reason),
        400,
        "INVALID_FIELD",
    )
    assert (await internal.post(f"/api/identity/customers/{mine}/erase", {})).status_code == 200
    assert_error(
        await internal.post(f"/api/identity/customers/{mine}/legal-hold", {"hold": True}),
        400,
        "CUSTOMER_ERASED",
    )


async def test_the_eleventh_erasure_in_five_minutes_is_429_across_gateway_replicas(
    database_url, client, kyc_tier
) -> None:
    """Two gateway replicas, each counting in its own memory: neither sees 10
    erasures, kyc-tier's database does."""
    org_id, partner = await partner_for(database_url, client)
    made = [await partner.new_customer() for _ in range(11)]
    async with gateway_client(gateway_settings({"kyc_tier": kyc_tier.address})) as second:
        replica = Partner(second, "")
        replica.headers = partner.headers
        for index, customer_id in enumerate(made[:10]):
            via = partner if index % 2 else replica
            answer = await via.post(f"/api/identity/customers/{customer_id}/erase", {})
            assert answer.status_code == 200, answer.text
        limited = await partner.post(f"/api/identity/customers/{made[10]}/erase", {})
    body = assert_error(limited, 429, "RATE_LIMITED")
    assert body["metadata"]["limit"] == "10 per 300 seconds per org"
    assert 1 <= int(limited.headers["retry-after"]) <= 300
    customer = (await partner.get(f"/api/identity/customers/{made[10]}")).json()["customer"]
    assert customer["status"] == "CUSTOMER_STATUS_ACTIVE"
    assert await rows(kyc_tier.core, models.Erasure, customer_id=made[10]) == []
    # Erasing an already-erased customer again is not a new erasure.
    again = await partner.post(f"/api/identity/customers/{made[0]}/erase", {})
    assert again.status_code == 200, again.text
    assert org_id


async def test_the_eleventh_erasure_through_one_gateway_is_refused_by_kyc_tier_and_audited(
    database_url, client, kyc_tier
) -> None:
    """The seed's limit is kyc-tier's, so its refusal leaves a denied audit
    entry; the gateway's bound in front is wider and lets it through."""
    _, partner = await partner_for(database_url, client)
    made = [await partner.new_customer() for _ in range(11)]
    for customer_id in made[:10]:
        answer = await partner.post(f"/api/identity/customers/{customer_id}/erase", {})
        assert answer.status_code == 200, answer.text
    limited = await partner.post(f"/api/identity/customers/{made[10]}/erase", {})
    body = assert_error(limited, 429, "RATE_LIMITED")
    assert body["metadata"]["limit"] == "10 per 300 seconds per org"
    core = kyc_tier.core
    assert await rows(core, models.Erasure, customer_id=made[10]) == []
    (denied,) = await rows(
        core, models.AuditOutbox, action="customer.erase", subject=f"customer:{made[10]}"
    )
    assert (denied.outcome, denied.details["reason"]) == ("denied", "RATE_LIMITED")


async def test_an_erased_customers_step_up_is_refused_cleanly(database_url, client) -> None:
    _, partner = await partner_for(database_url, client)
    customer_id = await partner.new_customer()
    assert (
        await partner.post(f"/api/identity/customers/{customer_id}/erase", {})
    ).status_code == 200
    for path, body in (
        ("/api/identity/face/flash-challenge", {"customerId": customer_id}),
        ("/api/identity/document/ktp/challenge", {"customerId": customer_id}),
    ):
        assert_error(await partner.post(path, body), 400, "CUSTOMER_ERASED")


async def test_a_flash_challenges_purpose_is_a_selfie_one_or_refused(database_url, client) -> None:
    """Unset is face liveness; step-up is taken; a KTP purpose or a value the
    contract does not define is INVALID_FIELD (an undefined one used to be
    taken silently as face liveness)."""
    _, partner = await partner_for(database_url, client)
    customer_id = await partner.new_customer()
    path = "/api/identity/face/flash-challenge"
    for purpose, expected in (
        (None, "CHALLENGE_PURPOSE_FACE_LIVENESS"),
        ("CHALLENGE_PURPOSE_STEP_UP", "CHALLENGE_PURPOSE_STEP_UP"),
    ):
        body = {"customerId": customer_id} | ({"purpose": purpose} if purpose else {})
        answer = await partner.post(path, body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["challenge"]["purpose"] == expected
    for purpose in ("CHALLENGE_PURPOSE_KTP_CAPTURE", 99):
        refused = assert_error(
            await partner.post(path, {"customerId": customer_id, "purpose": purpose}),
            400,
            "INVALID_FIELD",
        )
        assert refused["metadata"]["field"] == "purpose"


async def test_a_revoked_key_is_refused_by_every_gateway_replica_within_a_second(
    database_url, kyc_tier
) -> None:
    """Two gateway replicas, each caching keys for 30 s: a key revoked through
    one is refused by the other once its revocation check (1 s) comes due."""
    org_id, admin = await partner_for(database_url, None, "public", "internal")
    key_id, key = await asyncio.to_thread(add_key, database_url, org_id, ("public",))
    clock = ManualClock()
    settings = gateway_settings({"kyc_tier": kyc_tier.address})
    async with gateway_client(settings) as first, gateway_client(settings) as second:
        for replica in (first, second):
            replica.gateway.api_keys._clock = clock
        me = "/api/customers?pageSize=1"
        for replica in (first, second):
            assert (await replica.get(me, headers=bearer(key))).status_code == 200
        revoked = await first.post(
            f"/api/identity/api-keys/{key_id}/revoke", json={}, headers=admin.headers
        )
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["apiKey"]["revokedAt"]
        clock.now += 1.0
        for replica in (first, second):
            assert_error(await replica.get(me, headers=bearer(key)), 401, "API_KEY_INVALID")
        # The other keys keep working (looked up again, once).
        assert (await second.get(me, headers=admin.headers)).status_code == 200
        again = await first.post(
            f"/api/identity/api-keys/{key_id}/revoke", json={}, headers=admin.headers
        )
        assert again.json()["apiKey"]["revokedAt"] == revoked.json()["apiKey"]["revokedAt"]
    core = kyc_tier.core
    subject = f"api_key:{key_id}"
    assert [
        e.outcome
        for e in await rows(core, models.AuditOutbox, action="api_key.create", subject=subject)
    ] == ["success"]
    (revocation,) = await rows(core, models.AuditOutbox, action="api_key.revoke", subject=subject)
    assert revocation.actor.startswith("api_key:")
    # Use is audited once per key per minute, not per request.
    (use,) = await rows(core, models.AuditOutbox, action="api_key.use", subject=subject)
    assert use.actor == subject


async def test_api_key_revocation_refusals(database_url, client) -> None:
    org_id, partner = await partner_for(database_url, client)
    key_id, _ = await asyncio.to_thread(add_key, database_url, org_id, ("public",))
    revoke = f"/api/identity/api-keys/{key_id}/revoke"
    assert_error(await partner.post(revoke, {}), 403, "SCOPE_INSUFFICIENT")
    _, other = await partner_for(database_url, client, "internal")
    assert_error(await other.post(revoke, {}), 404, "API_KEY_NOT_FOUND")
    assert_error(
        await other.post("/api/identity/api-keys/key_unknown/revoke", {}), 404, "API_KEY_NOT_FOUND"
    )
    # Still valid: nothing was revoked.
    assert (await partner.get("/api/customers")).status_code == 200


async def test_the_cli_revokes_a_key(database_url, client, capsys) -> None:
    org_id, partner = await partner_for(database_url, client)
    key_id, key = await asyncio.to_thread(add_key, database_url, org_id, ("public",))
    args = ["api-keys", "revoke", key_id, "--org", org_id, "--database-url", database_url]
    assert await asyncio.to_thread(identity_main, args) == 0
    assert f"api key {key_id} revoked at" in capsys.readouterr().out
    other_org = ["api-keys", "revoke", key_id, "--org", "org_other", "--database-url", database_url]
    assert await asyncio.to_thread(identity_main, other_org) == 2
    assert "no such API key" in capsys.readouterr().err


async def test_face_match_answers_a_decision_and_a_band_never_the_score(
    database_url, client, fakes
) -> None:
    _, partner = await partner_for(database_url, client)
    customer_id = await partner.new_customer()
    fakes.matcher.enroll_reference(customer_id)
    body = {"customerId": customer_id, "probeImage": {"data": "cHJvYmU="}}
    answers = {}
    for score, rate in ((0.8, 1e-4), (0.93, 1e-8), (0.1, 0.3)):
        fakes.matcher.score, fakes.matcher.false_match_rate = score, rate
        response = await partner.post("/api/identity/face/match", body)
        assert response.status_code == 200, response.text
        reply = response.json()
        assert "match" not in reply and not reply["verification"].get("scores")
        assert "score" not in response.text.replace('"scores"', "")
        assert "FalseMatch" not in response.text and "false_match" not in response.text
        # Neither the score nor the rate appears as a value, even as float32 or as text
        # (matching the digits in the raw body would trip on timestamps).
        leaked = [
            n for n in numbers_in(reply) for x in (score, rate) if isclose(n, x, rel_tol=1e-6)
        ]
        assert not leaked
        decision = reply["decision"]
        assert decision["threshold"] == 0.5
        answers[score] = (decision["match"], decision["band"])
    assert answers == {
        0.8: (True, "FACE_MATCH_BAND_MEDIUM"),
        0.93: (True, "FACE_MATCH_BAND_HIGH"),
        0.1: (False, "FACE_MATCH_BAND_LOW"),
    }
    fakes.reset()


def numbers_in(value: object) -> list[float]:
    """Every number in a decoded JSON document, at any depth, including numeric strings."""
    if isinstance(value, dict):
        return [n for item in value.values() for n in numbers_in(item)]
    if isinstance(value, list):
        return [n for item in value for n in numbers_in(item)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [float(value)]
    if isinstance(value, str):
        try:
            return [float(value)]
        except ValueError:
            return []
    return []


async def test_face_match_is_rate_limited_per_customer(database_url, client, fakes) -> None:
    _, partner = await partner_for(database_url, client)
    customer_id, neighbour = await partner.new_customer(), await partner.new_customer()
    for someone in (customer_id, neighbour):
        fakes.matcher.enroll_reference(someone)
    body = {"customerId": customer_id, "probeImage": {"data": "cHJvYmU="}}
    for _ in range(20):
        assert (await partner.post("/api/identity/face/match", body)).status_code == 200
    limited = await partner.post("/api/identity/face/match", body)
    assert_error(limited, 429, "RATE_LIMITED")
    assert int(limited.headers["retry-after"]) >= 1
    # Another customer of the organisation has a budget of its own.
    other = {"customerId": neighbour, "probeImage": {"data": "cHJvYmU="}}
    assert (await partner.post("/api/identity/face/match", other)).status_code == 200
    fakes.reset()


async def test_review_decision_route_refusals(database_url, client) -> None:
    _, partner = await partner_for(database_url, client)
    decision = {"decision": "REVIEW_DECISION_APPROVE"}
    assert_error(
        await partner.post("/api/identity/review-queue/rev_x/decision", decision),
        403,
        "SCOPE_INSUFFICIENT",
    )
    _, analyst = await partner_for(database_url, client, "internal")
    assert_error(
        await analyst.post("/api/identity/review-queue/rev_x/decision", decision),
        404,
        "REVIEW_NOT_FOUND",
    )
    missing = assert_error(
        await analyst.post("/api/identity/review-queue/rev_x/decision", {}), 400, "INVALID_FIELD"
    )
    assert missing["metadata"]["field"] == "decision"


async def test_customers_are_listed_a_page_at_a_time_and_filtered(database_url, client) -> None:
    _, partner = await partner_for(database_url, client)
    made = {await partner.new_customer() for _ in range(3)}
    first = (await partner.get("/api/customers?pageSize=2")).json()
    assert len(first["customers"]) == 2 and first["nextPageToken"]
    rest = await partner.get(f"/api/customers?pageSize=2&pageToken={first['nextPageToken']}")
    assert rest.status_code == 200, rest.text
    assert not rest.json().get("nextPageToken")
    listed = [c["customerId"] for c in first["customers"] + rest.json()["customers"]]
    assert sorted(listed) == sorted(made)
    basic = (await partner.get("/api/customers?tier=KYC_TIER_BASIC")).json()["customers"]
    assert {c["customerId"] for c in basic} == made
    assert (await partner.get("/api/customers?tier=KYC_TIER_PREMIUM")).json()["customers"] == []
    later = await partner.get("/api/customers?createdAfter=2999-01-01T00:00:00Z")
    assert later.json()["customers"] == []
    _, other = await partner_for(database_url, client)
    assert (await other.get("/api/customers")).json()["customers"] == []


async def test_customer_list_refusals(database_url, client) -> None:
    _, partner = await partner_for(database_url, client)
    assert_error(await partner.get("/api/customers?pageSize=-1"), 400, "INVALID_FIELD")
    unknown = assert_error(await partner.get("/api/customers?tier=99"), 400, "INVALID_FIELD")
    assert unknown["metadata"] == {"field": "tier"}
    assert_error(await partner.get("/api/customers?pageToken=not-a-token"), 400, "INVALID_FIELD")


async def test_attempts_are_listed_and_filtered(database_url, client) -> None:
    org_id, partner = await partner_for(database_url, client)
    customer_id = await partner.new_customer()
    database = Database(database_url)
    try:
        with database.transaction() as session:
            records.add_attempt(session, org_id, customer_id, "ktp_capture", "passed")
            records.add_attempt(
                session,
                org_id,
                customer_id,
                "face_liveness",
                "refused",
                (Reason("PAD_ATTACK_SUSPECTED", "spoof"),),
            )
    finally:
        database.dispose()

    async def listed(path: str) -> list[dict[str, Any]]:
        response = await partner.get(path)
        assert response.status_code == 200, response.text
        return response.json().get("attempts", [])

    every = await listed("/api/identity/attempts")
    # Creating the customer checked its NIK's format: an attempt too.
    assert sorted(a["kind"] for a in every) == [
        "VERIFICATION_KIND_FACE_LIVENESS",
        "VERIFICATION_KIND_KTP_CAPTURE",
        "VERIFICATION_KIND_NIK_FORMAT",
    ]
    (ktp,) = await listed("/api/identity/attempts?kind=VERIFICATION_KIND_KTP_CAPTURE")
    assert (ktp["outcome"], ktp["customerId"]) == ("ATTEMPT_OUTCOME_PASSED", customer_id)
    (refused,) = await listed("/api/identity/attempts?outcome=ATTEMPT_OUTCOME_REFUSED")
    assert refused["reasons"] == [{"code": "PAD_ATTACK_SUSPECTED", "message": "spoof"}]
    assert await listed("/api/identity/attempts?startTime=2999-01-01T00:00:00Z") == []
    assert len(await listed("/api/identity/attempts?endTime=2999-01-01T00:00:00Z")) == 3
    assert len(await listed(f"/api/identity/customers/{customer_id}/attempts?pageSize=2")) == 2
    _, other = await partner_for(database_url, client)
    assert (await other.get("/api/identity/attempts")).json().get("attempts", []) == []


async def test_attempt_list_refusals(database_url, client) -> None:
    _, partner = await partner_for(database_url, client)
    assert_error(await partner.get("/api/identity/attempts?pageSize=-1"), 400, "INVALID_FIELD")
    assert_error(
        await partner.get("/api/identity/customers/cus_unknown/attempts"), 404, "CUSTOMER_NOT_FOUND"
    )


async def test_every_entry_these_routes_audited_is_acceptable_to_the_audit_service(
    kyc_tier,
) -> None:
    # Runs last in the module: creation, use and revocation of keys, legal
    # holds, erasures (requested, denied, done), face matches.
    actions = {e.action for e in await rows(kyc_tier.core, models.AuditOutbox)}
    assert {"api_key.create", "api_key.use", "api_key.revoke", "customer.legal_hold"} <= actions
    assert {"customer.erase_requested", "customer.erase", "attempt.started"} <= actions
    assert await assert_audit_entries_acceptable(kyc_tier.core)


async def test_a_retention_override_lengthens_a_period_and_is_audited(
    database_url, client, kyc_tier
) -> None:
    org_id, internal = await partner_for(database_url, client, "public", "internal")
    route = "/api/identity/retention/overrides"
    body = {"dataClass": "verifications", "periodDays": 4000, "basis": "POJK 8/2023"}
    answered = await internal.post(route, body)
    assert answered.status_code == 200, answered.text
    assert answered.json() == {
        "dataClass": "verifications",
        "periodDays": 4000,
        "declaredDays": 7 * 365 + 2,
    }
    (row,) = await rows(kyc_tier.core, models.RetentionOverride, org_id=org_id)
    assert (row.period_days, row.basis) == (4000, "POJK 8/2023")
    assert row.set_by.startswith("api_key:")
    cleared = await internal.post(route, {"dataClass": "verifications", "periodDays": 0})
    assert cleared.json()["periodDays"] == 7 * 365 + 2
    assert await rows(kyc_tier.core, models.RetentionOverride, org_id=org_id) == []
    audited = await rows(kyc_tier.core, models.AuditOutbox, subject=f"org:{org_id}")
    assert [e.action for e in sorted(audited, key=lambda e: e.id)] == [
        "retention.override_set",
        "retention.override_cleared",
    ]


async def test_retention_override_refusals(database_url, client, kyc_tier) -> None:
    _, partner = await partner_for(database_url, client)
    route = "/api/identity/retention/overrides"
    good = {"dataClass": "step_up_frames", "periodDays": 365, "basis": "OJK"}
    assert_error(await partner.post(route, good), 403, "SCOPE_INSUFFICIENT")
    org_id, internal = await partner_for(database_url, client, "public", "internal")
    for bad, field in (
        ({**good, "periodDays": 30}, "periodDays"),
        ({**good, "periodDays": 90}, "periodDays"),
        ({**good, "dataClass": "audit_log"}, "dataClass"),
        ({**good, "dataClass": "nothing"}, "dataClass"),
        ({**good, "basis": ""}, "basis"),
        ({**good, "periodDays": -5}, "periodDays"),
    ):
        refused = assert_error(await internal.post(route, bad), 400, "INVALID_FIELD")
        assert field in refused["message"], refused
    assert await rows(kyc_tier.core, models.RetentionOverride, org_id=org_id) == []
