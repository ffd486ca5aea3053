"""The analyst dashboard through the REST gateway, on PostgreSQL and SQLite,
with an analyst's session and with an internal-scope key: search, the review
queue and its decisions (enrollments and tiers), the tier-event feed and
the CSV exports; each refuses what it must, and one organisation's analyst
sees nothing of another's.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from identity_cli.schema import migrate_all
from identity_platform_api.kyc_tier.v1 import (
    attempts_pb2,
    attempts_pb2_grpc,
    dashboard_pb2,
    dashboard_pb2_grpc,
    resources_pb2,
)
from identity_runtime.status import error_info, status_from_rpc_error
from services.kyc_tier import export, models, records
from services.kyc_tier.bootstrap import build
from services.kyc_tier.flows.face import LivenessRequest
from services.kyc_tier.idempotency import IdempotentRequest
from services.kyc_tier.ports import Duplicate, Reason
from services.kyc_tier.service import SPEC
from tests.service.test_console_auth import Analyst, login, new_org, new_user
from tests.support import channel, kyc_tier_env, start_service, unique_name
from tests.support.gateway import (
    assert_documented,
    assert_error,
    bearer,
    gateway_client,
    gateway_settings,
)
from tests.support.kyc_fakes import (
    KycFakes,
    assert_audit_entries_acceptable,
    capture_bundle,
    console_actor,
    rows,
)
from tests.support.mesh import postgres_schema
from tests.support.meshauth import caller_metadata

NIK = "3273024107950003"
OTHER_NIK = "3273024107950011"


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "postgres":
        with postgres_schema() as url:
            yield url
        return
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'identity.db'}"
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


@dataclasses.dataclass
class Org:
    org_id: str
    key: str
    analyst: Analyst

    async def customer(self, client: httpx.AsyncClient, **fields: str) -> str:
        body = {"externalId": unique_name("ext"), "fullName": "Siti Rahayu", **fields}
        response = await client.post("/api/customers", json=body, headers=bearer(self.key))
        assert response.status_code == 200, response.text
        return response.json()["customer"]["customerId"]


async def org_with_analyst(client: httpx.AsyncClient, database_url: str) -> Org:
    org_id, key = await new_org(database_url)
    email = await new_user(database_url, org_id)
    return Org(org_id, key, Analyst(client, await login(client, email)))


async def held_for_review(core: Any, org_id: str, customer_id: str, enrollment_id: str) -> str:
    """A KTP capture waiting for an analyst (a duplicate face, the reference held)."""

    def work(session: Any) -> str:
        customer = records.load_customer(session, org_id, customer_id, for_update=True)
        row = records.add_verification(
            session,
            customer,
            "ktp_capture",
            None,
            (Reason("DUPLICATE_FACE", "the portrait matches another customer"),),
            review_details={"enrollment_id": enrollment_id, "duplicate_customers": "cus_x"},
        )
        return str(
            session.scalar(
                select(models.ReviewItem.review_id).where(
                    models.ReviewItem.verification_id == row.verification_id
                )
            )
        )

    return await core.database.run(work)


async def test_search_by_nik_name_and_email_masked_audited_and_per_org(
    database_url, client, kyc_tier
) -> None:
    mine = await org_with_analyst(client, database_url)
    theirs = await org_with_analyst(client, database_url)
    email = f"{unique_name('siti').lower()}@mail.example"
    customer_id = await mine.customer(client, nik=NIK, email=email, phone="+6281234567890")
    await theirs.customer(client, nik=NIK)  # the same person at another organisation
    for q in (NIK, "rahayu SITI", "Rah", email.upper()):
        response = await mine.analyst.get(f"/api/identity/search?q={q}")
        assert response.status_code == 200, response.text
        found = [c for c in response.json()["customers"] if c["customerId"] == customer_id]
        assert found, q
    hit = found[0]
    assert hit["fullName"] == "S*** R*****"
    assert hit["nikMasked"] != NIK and NIK not in response.text
    assert hit["email"].startswith(email[0] + "*") and "+6281234567890" not in response.text
    none = await mine.analyst.get("/api/identity/search?q=rahayu%20budi")
    assert [c["customerId"] for c in none.json()["customers"]] == []
    by_nik = await mine.analyst.get(f"/api/identity/search?q={NIK}")
    assert [c["customerId"] for c in by_nik.json()["customers"]] == [customer_id]
    by_key = await client.get(f"/api/identity/search?q={NIK}", headers=bearer(mine.key))
    assert [c["customerId"] for c in by_key.json()["customers"]] == [customer_id]
    entries = await rows(kyc_tier.core, models.AuditOutbox, action="customer.search")
    user_id = mine.analyst.body["session"]["user"]["userId"]
    mine_entries = [e for e in entries if e.org_id == mine.org_id]
    actors = {e.actor for e in mine_entries}
    assert f"console_user:{user_id}" in actors and any(a.startswith("api_key:") for a in actors)
    assert any(e.details["query_kind"] == "nik" for e in mine_entries)
    assert all(NIK not in str(e.details) and email not in str(e.details) for e in entries)
    await assert_audit_entries_acceptable(kyc_tier.core)


async def test_search_refusals(database_url, client) -> None:
    mine = await org_with_analyst(client, database_url)
    for q in ("", "a", "x" * 201, "--"):
        response = await mine.analyst.get(f"/api/identity/search?q={q}")
        assert assert_error(response, 400, "INVALID_FIELD")["metadata"]["field"] == "q"
    _, public = await new_org(database_url, "public")
    response = await client.get("/api/identity/search?q=siti", headers=bearer(public))
    assert_error(response, 403, "SCOPE_INSUFFICIENT")
    assert_error(await client.get("/api/identity/search?q=siti"), 401, "API_KEY_MISSING")


async def test_approving_a_duplicate_face_activates_the_reference_and_raises_the_tier(
    database_url, client, kyc_tier, fakes
) -> None:
    mine = await org_with_analyst(client, database_url)
    theirs = await org_with_analyst(client, database_url)
    customer_id = await mine.customer(client, nik=NIK)
    held = fakes.matcher.enroll_reference(customer_id, active=False)
    review_id = await held_for_review(kyc_tier.core, mine.org_id, customer_id, held)

    queue = await mine.analyst.get("/api/identity/review-queue")
    assert review_id in [i["reviewId"] for i in queue.json()["items"]]
    filtered = await mine.analyst.get(
        f"/api/identity/review-queue?customerId={customer_id}&kind=VERIFICATION_KIND_KTP_CAPTURE"
    )
    assert [i["reviewId"] for i in filtered.json()["items"]] == [review_id]
    other_kind = await mine.analyst.get(
        f"/api/identity/review-queue?customerId={customer_id}&kind=VERIFICATION_KIND_FACE_MATCH"
    )
    assert other_kind.json()["items"] == []
    other = await theirs.analyst.get("/api/identity/review-queue")
    assert review_id not in [i["reviewId"] for i in other.json()["items"]]

    path = f"/api/identity/review-queue/{review_id}/decision"
    decision = {"decision": "REVIEW_DECISION_APPROVE", "note": "same person, new card"}
    assert_error(await theirs.analyst.post(path, decision), 404, "REVIEW_NOT_FOUND")
    assert_error(await mine.analyst.post(path, decision, csrf=False), 403, "CSRF_INVALID")
    response = await mine.analyst.post(path, decision)
    assert response.status_code == 200, response.text
    user_id = mine.analyst.body["session"]["user"]["userId"]
    assert response.json()["tier"] == "KYC_TIER_STANDARD"
    assert response.json()["item"]["decidedBy"] == f"console_user:{user_id}"
    assert [e.active for e in fakes.matcher.enrollments[customer_id]] == [True]
    assert_error(await mine.analyst.post(path, decision), 400, "REVIEW_ALREADY_DECIDED")

    events = await mine.analyst.get(f"/api/identity/tier-events?customerId={customer_id}")
    latest = events.json()["events"][0]
    assert (latest["fromTier"], latest["toTier"]) == ("KYC_TIER_BASIC", "KYC_TIER_STANDARD")
    assert latest["cause"] == "review_decision" and latest["actor"] == f"console_user:{user_id}"
    approved = await mine.analyst.get("/api/identity/review-queue?status=REVIEW_STATUS_APPROVED")
    assert [i["reviewId"] for i in approved.json()["items"]] == [review_id]
    pending = await mine.analyst.get("/api/identity/review-queue")
    assert review_id not in [i["reviewId"] for i in pending.json()["items"]]
    audit = await rows(kyc_tier.core, models.AuditOutbox, action="review.decide")
    assert [e.actor for e in audit if e.org_id == mine.org_id] == [f"console_user:{user_id}"]
    changed = await rows(kyc_tier.core, models.AuditOutbox, action="kyc.tier_changed")
    assert any(e.details["cause"] == "review_decision" for e in changed if e.org_id == mine.org_id)


async def test_rejecting_a_duplicate_face_retires_the_reference_and_keeps_the_tier(
    database_url, client, kyc_tier, fakes
) -> None:
    mine = await org_with_analyst(client, database_url)
    customer_id = await mine.customer(client, nik=NIK)
    held = fakes.matcher.enroll_reference(customer_id, active=False)
    review_id = await held_for_review(kyc_tier.core, mine.org_id, customer_id, held)
    response = await client.post(
        f"/api/identity/review-queue/{review_id}/decision",
        json={"decision": "REVIEW_DECISION_REJECT", "note": "different person"},
        headers=bearer(mine.key),
    )
    assert response.status_code == 200, response.text
    assert response.json()["tier"] == "KYC_TIER_BASIC"
    assert response.json()["item"]["status"] == "REVIEW_STATUS_REJECTED"
    (reference,) = fakes.matcher.enrollments[customer_id]
    assert reference.retired_at is not None
    events = await rows(kyc_tier.core, models.TierEvent, customer_id=customer_id)
    assert [e.cause for e in events] != [] and all(e.cause != "review_decision" for e in events)
    verdicts = await rows(kyc_tier.core, models.Verification, customer_id=customer_id)
    assert any(v.details.get("review_id") == review_id and v.outcome == "failed" for v in verdicts)


async def test_a_selfie_held_as_a_duplicate_face_is_decided_from_the_console(
    database_url, client, kyc_tier, fakes
) -> None:
    """A face-liveness capture matching another customer's face is queued
    for the analyst (naming that customer) and approving it lifts the hold."""
    mine = await org_with_analyst(client, database_url)
    theirs = await org_with_analyst(client, database_url)
    first = await mine.customer(client)
    customer_id = await mine.customer(client)
    fakes.matcher.duplicates = (Duplicate(first, 0.93),)
    try:
        held = await kyc_tier.core.face.check_liveness(
            mine.org_id, LivenessRequest(customer_id, "chl_f", capture_bundle())
        )
    finally:
        fakes.matcher.duplicates = ()
    assert held.recorded.verification.outcome == "needs_review"

    queue = await mine.analyst.get(
        f"/api/identity/review-queue?customerId={customer_id}&kind=VERIFICATION_KIND_FACE_LIVENESS"
    )
    assert queue.status_code == 200, queue.text
    (item,) = queue.json()["items"]
    assert item["verificationId"] == held.recorded.verification.verification_id
    assert item["duplicateCustomerIds"] == [first]
    assert [r["code"] for r in item["reasons"]] == ["DUPLICATE_FACE"]
    other = await theirs.analyst.get(f"/api/identity/review-queue?customerId={customer_id}")
    assert other.json()["items"] == []

    path = f"/api/identity/review-queue/{item['reviewId']}/decision"
    decision = {"decision": "REVIEW_DECISION_APPROVE", "note": "twins, checked"}
    assert_error(await theirs.analyst.post(path, decision), 404, "REVIEW_NOT_FOUND")
    response = await mine.analyst.post(path, decision)
    assert response.status_code == 200, response.text
    assert response.json()["item"]["status"] == "REVIEW_STATUS_APPROVED"
    (reference,) = fakes.matcher.enrollments[customer_id]
    assert (reference.enrollment_id, reference.active) == (held.assessment.enrollment_id, True)
    assert_error(await mine.analyst.post(path, decision), 400, "REVIEW_ALREADY_DECIDED")


async def test_a_borderline_ktp_capture_is_passed_or_failed_by_the_decision(
    database_url, client, kyc_tier, fakes
) -> None:
    mine = await org_with_analyst(client, database_url)
    passed_id = await mine.customer(client, nik=NIK)
    failed_id = await mine.customer(client, nik=NIK)
    approve = await held_for_review(kyc_tier.core, mine.org_id, passed_id, "")
    reject = await held_for_review(kyc_tier.core, mine.org_id, failed_id, "")
    enrollments_before = dict(fakes.matcher.enrollments)
    for review_id, decision, tier in (
        (approve, "REVIEW_DECISION_APPROVE", "KYC_TIER_STANDARD"),
        (reject, "REVIEW_DECISION_REJECT", "KYC_TIER_BASIC"),
    ):
        response = await mine.analyst.post(
            f"/api/identity/review-queue/{review_id}/decision", {"decision": decision}
        )
        assert response.status_code == 200, response.text
        assert response.json()["tier"] == tier
    assert fakes.matcher.enrollments == enrollments_before  # no reference was held
    for customer_id, outcome in ((passed_id, "passed"), (failed_id, "failed")):
        ktp = [
            v
            for v in await rows(kyc_tier.core, models.Verification, customer_id=customer_id)
            if v.kind == "ktp_capture" and v.details.get("review_id")
        ]
        assert [v.outcome for v in ktp] == [outcome]
    status = await client.get(f"/api/identity/kyc/{passed_id}", headers=bearer(mine.key))
    assert status.json()["tier"] == "KYC_TIER_STANDARD"


async def test_review_queue_refusals(database_url, client) -> None:
    mine = await org_with_analyst(client, database_url)
    response = await mine.analyst.get("/api/identity/review-queue?status=7")
    assert_error(response, 400, "INVALID_FIELD")
    response = await mine.analyst.get("/api/identity/review-queue?pageToken=garbage!")
    assert_error(response, 400, "INVALID_FIELD")
    _, public = await new_org(database_url, "public")
    response = await client.get("/api/identity/review-queue", headers=bearer(public))
    assert_error(response, 403, "SCOPE_INSUFFICIENT")


async def test_a_decision_the_contract_does_not_define_is_invalid_not_missing(
    database_url, client, kyc_tier, fakes
) -> None:
    """Proto3 enums are open: 7 parses, and is refused as an unknown value
    (not as a missing decision); neither refusal decides the item, which an
    analyst then decides."""
    mine = await org_with_analyst(client, database_url)
    customer_id = await mine.customer(client, nik=NIK)
    held = fakes.matcher.enroll_reference(customer_id, active=False)
    review_id = await held_for_review(kyc_tier.core, mine.org_id, customer_id, held)
    path = f"/api/identity/review-queue/{review_id}/decision"

    refused = await mine.analyst.post(path, {"decision": 7})
    unknown = assert_error(refused, 400, "INVALID_FIELD")
    assert_documented(refused)
    assert unknown["metadata"] == {"field": "decision"}
    assert unknown["message"] == "decision: unknown value"
    missing = assert_error(await mine.analyst.post(path, {"note": "x"}), 400, "INVALID_FIELD")
    assert missing["metadata"] == {"field": "decision"}
    assert missing["message"].startswith("decision: is required")
    audit = await rows(kyc_tier.core, models.AuditOutbox, action="review.decide")
    assert [e for e in audit if e.org_id == mine.org_id] == []

    response = await mine.analyst.post(path, {"decision": "REVIEW_DECISION_APPROVE"})
    assert response.status_code == 200, response.text
    assert response.json()["item"]["status"] == "REVIEW_STATUS_APPROVED"


async def test_tier_events_feed_pages_with_a_cursor_and_filters(database_url, client) -> None:
    mine = await org_with_analyst(client, database_url)
    theirs = await org_with_analyst(client, database_url)
    created = [await mine.customer(client, nik=NIK) for _ in range(3)]
    seen: list[str] = []
    token = ""
    while True:
        response = await mine.analyst.get(f"/api/identity/tier-events?pageSize=2&pageToken={token}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["events"]) <= 2
        seen += [e["customerId"] for e in body["events"]]
        token = body["nextPageToken"]
        if not token:
            break
    assert seen == created[::-1]  # newest first, each once
    one = await mine.analyst.get(f"/api/identity/tier-events?customerId={created[0]}")
    assert [e["customerId"] for e in one.json()["events"]] == [created[0]]
    later = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    empty = await mine.analyst.get(f"/api/identity/tier-events?startTime={later}")
    assert empty.json()["events"] == []
    other = await theirs.analyst.get(f"/api/identity/tier-events?customerId={created[0]}")
    assert other.json()["events"] == []
    bad = await mine.analyst.get("/api/identity/tier-events?pageToken=garbage!")
    assert_error(bad, 400, "INVALID_FIELD")
    backwards = await mine.analyst.get(
        f"/api/identity/tier-events?startTime={later}&endTime=2020-01-01T00:00:00Z"
    )
    assert_error(backwards, 400, "INVALID_FIELD")


def _span(days: int = 1) -> str:
    now = datetime.now(UTC)
    after = (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"createdAfter={after}&createdBefore={before}"


async def test_customer_export_is_masked_neutralised_bounded_and_audited(
    database_url, client, kyc_tier
) -> None:
    mine = await org_with_analyst(client, database_url)
    theirs = await org_with_analyst(client, database_url)
    injected = await mine.customer(
        client, fullName='=HYPERLINK("http://evil")', externalId="@SUM(1+1)", nik=NIK
    )
    plain = await mine.customer(client, email="budi@bank.example", phone="+6281234567890")
    foreign = await theirs.customer(client)
    response = await mine.analyst.get(f"/api/identity/export/customers.csv?{_span()}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["cache-control"] == "no-store"
    table = list(csv.DictReader(io.StringIO(response.text)))
    by_id = {row["customer_id"]: row for row in table}
    assert set(by_id) == {injected, plain} and foreign not in response.text
    assert by_id[injected]["full_name"].startswith("'=")
    assert by_id[injected]["external_id"] == "'@SUM(1+1)"
    assert by_id[plain]["email"] == "b***@bank.example"
    assert by_id[plain]["phone"].endswith("890") and "+62812" not in response.text
    assert NIK not in response.text
    assert by_id[injected]["created_at"].endswith("+07:00")  # Asia/Jakarta
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in table for cell in row.values())
    user_id = mine.analyst.body["session"]["user"]["userId"]
    audit = await rows(kyc_tier.core, models.AuditOutbox, action="export.customers")
    assert [(e.actor, e.details["rows"]) for e in audit if e.org_id == mine.org_id] == [
        (f"console_user:{user_id}", "2")
    ]
    standard = await mine.analyst.get(
        f"/api/identity/export/customers.csv?{_span()}&tier=KYC_TIER_PREMIUM"
    )
    assert standard.text.strip().count("\n") == 0  # the header only


async def test_verification_export_lists_the_organisations_verifications(
    database_url, client
) -> None:
    mine = await org_with_analyst(client, database_url)
    customer_id = await mine.customer(client, nik=NIK)
    response = await client.get(
        f"/api/identity/export/verifications.csv?{_span()}&kind=VERIFICATION_KIND_NIK_FORMAT",
        headers=bearer(mine.key),
    )
    assert response.status_code == 200, response.text
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["customer_id"], r["kind"], r["outcome"]) for r in table] == [
        (customer_id, "nik_format", "passed")
    ]


async def test_export_refusals(database_url, client, monkeypatch) -> None:
    mine = await org_with_analyst(client, database_url)
    await mine.customer(client)
    await mine.customer(client)
    monkeypatch.setattr(export, "MAX_EXPORT_ROWS", 1)  # kyc-tier runs in this process
    response = await mine.analyst.get(f"/api/identity/export/customers.csv?{_span()}")
    assert_error(response, 400, "EXPORT_TOO_LARGE")
    monkeypatch.undo()
    for path in ("customers.csv", "verifications.csv"):
        base = f"/api/identity/export/{path}"
        missing = await mine.analyst.get(base)
        assert assert_error(missing, 400, "INVALID_FIELD")["metadata"]["field"] == "createdAfter"
        too_long = await mine.analyst.get(f"{base}?{_span(days=400)}")
        assert_error(too_long, 400, "INVALID_FIELD")
        _, public = await new_org(database_url, "public")
        assert_error(
            await client.get(f"{base}?{_span()}", headers=bearer(public)), 403, "SCOPE_INSUFFICIENT"
        )


async def scored_step_up(core: Any, org_id: str, customer_id: str) -> str:
    def work(session: Any) -> str:
        customer = records.load_customer(session, org_id, customer_id, for_update=True)
        row = records.add_verification(
            session,
            customer,
            "step_up",
            False,
            (Reason("FACE_MISMATCH", "the live face does not match the reference"),),
            scores={
                "pad": 0.97,
                "pad_threshold": 0.5,
                "flash": 0.88,
                "match": 0.21,
                "match_threshold": 0.36,
                "quality_blur_laplacian_var": 312.5,
            },
            model_ids={"detector": "yunet-2023mar@1", "embedding": "sface-2021dec@1"},
        )
        return row.verification_id

    return await core.database.run(work)


async def test_the_customer_timeline_lists_verifications_with_their_scores_per_org(
    database_url, client, kyc_tier
) -> None:
    mine = await org_with_analyst(client, database_url)
    theirs = await org_with_analyst(client, database_url)
    customer_id = await mine.customer(client, nik=NIK, email="siti@mail.example")
    step_up = await scored_step_up(kyc_tier.core, mine.org_id, customer_id)

    response = await mine.analyst.get(f"/api/identity/customers/{customer_id}/verifications")
    assert response.status_code == 200, response.text
    timeline = response.json()["verifications"]
    assert [v["kind"] for v in timeline] == [
        "VERIFICATION_KIND_STEP_UP",
        "VERIFICATION_KIND_NIK_FORMAT",
    ]  # newest first
    newest = timeline[0]
    assert newest["verificationId"] == step_up
    assert newest["outcome"] == "VERIFICATION_OUTCOME_FAILED"
    assert newest["scores"] == {
        "pad": 0.97,
        "pad_threshold": 0.5,
        "flash": 0.88,
        "match": 0.21,
        "match_threshold": 0.36,
        "quality_blur_laplacian_var": 312.5,
    }
    assert newest["models"]["embedding"] == "sface-2021dec@1"
    assert [r["code"] for r in newest["reasons"]] == ["FACE_MISMATCH"]
    # Scores and codes only: no personal data in the timeline.
    assert NIK not in response.text and "siti" not in response.text.lower()
    # A cursor, page by page; the same with an internal-scope key.
    first = await client.get(
        f"/api/identity/customers/{customer_id}/verifications?pageSize=1", headers=bearer(mine.key)
    )
    token = first.json()["nextPageToken"]
    assert [v["verificationId"] for v in first.json()["verifications"]] == [step_up]
    second = await mine.analyst.get(
        f"/api/identity/customers/{customer_id}/verifications?pageSize=1&pageToken={token}"
    )
    assert [v["kind"] for v in second.json()["verifications"]] == ["VERIFICATION_KIND_NIK_FORMAT"]
    assert second.json()["nextPageToken"] == ""

    # Another organisation's analyst sees nothing of it, as if it did not exist.
    foreign = await theirs.analyst.get(f"/api/identity/customers/{customer_id}/verifications")
    assert_error(foreign, 404, "CUSTOMER_NOT_FOUND")
    assert step_up not in foreign.text
    unknown = await mine.analyst.get("/api/identity/customers/cus_nobody/verifications")
    assert_error(unknown, 404, "CUSTOMER_NOT_FOUND")
    bad = await mine.analyst.get(
        f"/api/identity/customers/{customer_id}/verifications?pageToken=garbage!"
    )
    assert_error(bad, 400, "INVALID_FIELD")
    negative = await mine.analyst.get(
        f"/api/identity/customers/{customer_id}/verifications?pageSize=-1"
    )
    assert_error(negative, 400, "INVALID_FIELD")
    _, public = await new_org(database_url, "public")
    scoped = await client.get(
        f"/api/identity/customers/{customer_id}/verifications", headers=bearer(public)
    )
    assert_error(scoped, 403, "SCOPE_INSUFFICIENT")
    anonymous = await client.get(f"/api/identity/customers/{customer_id}/verifications")
    assert anonymous.status_code == 401


# Bad filters of the filtered listings, each as the gRPC request carries it.
BAD_FILTERS = [
    ("ListReviewQueue", dashboard_pb2.ListReviewQueueRequest(status=7), "status"),
    ("ListReviewQueue", dashboard_pb2.ListReviewQueueRequest(kind=99), "kind"),
    (
        "ListTierEvents",
        dashboard_pb2.ListTierEventsRequest(start_time=Timestamp(seconds=2**40)),
        "start_time",
    ),
    (
        "ListTierEvents",
        dashboard_pb2.ListTierEventsRequest(end_time=Timestamp(seconds=1, nanos=-1)),
        "end_time",
    ),
    (
        "StreamVerificationsCsv",
        dashboard_pb2.StreamVerificationsCsvRequest(
            kind=99,
            created_after=Timestamp(seconds=1_700_000_000),
            created_before=Timestamp(seconds=1_700_086_400),
        ),
        "kind",
    ),
    ("ListAttempts", attempts_pb2.ListAttemptsRequest(kind=99), "kind"),
    ("ListAttempts", attempts_pb2.ListAttemptsRequest(outcome=42), "outcome"),
    (
        "ListAttempts",
        attempts_pb2.ListAttemptsRequest(start_time=Timestamp(seconds=-(2**40))),
        "start_time",
    ),
    (
        "ListAttempts",
        attempts_pb2.ListAttemptsRequest(end_time=Timestamp(seconds=2**40)),
        "end_time",
    ),
]
STUBS = {
    "ListReviewQueue": dashboard_pb2_grpc.DashboardServiceStub,
    "ListTierEvents": dashboard_pb2_grpc.DashboardServiceStub,
    "StreamVerificationsCsv": dashboard_pb2_grpc.DashboardServiceStub,
    "ListAttempts": attempts_pb2_grpc.AttemptServiceStub,
}


async def call_dashboard(kyc_tier, rpc: str, request: Any, org_id: str) -> Any:
    """The RPC on kyc-tier's gRPC port, as the gateway forwards an analyst's call."""
    # A real analyst of the organisation: kyc-tier checks the user's roles.
    actor = await console_actor(kyc_tier.core, org_id) if org_id else "console_user:usr_x"
    metadata = caller_metadata(org_id, scopes=("internal",), actor=actor, issuer="gateway")
    async with channel(kyc_tier, credentials=False) as chan:
        call = getattr(STUBS[rpc](chan), rpc)
        if rpc.startswith("Stream"):
            return [chunk async for chunk in call(request, metadata=metadata)]
        return await call(request, metadata=metadata)


# The filters only the listing's own conversion refuses (an unknown enum value);
# a time out of range is refused by the request validation every RPC runs first.
DOMAIN_FILTERS = [case for case in BAD_FILTERS if not case[2].endswith("_time")]


@pytest.mark.parametrize(("rpc", "request_", "field"), DOMAIN_FILTERS)
async def test_a_caller_without_an_organisation_is_refused_before_its_filter(
    kyc_tier, rpc: str, request_: Any, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call_dashboard(kyc_tier, rpc, request_, org_id="")
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(status_from_rpc_error(refused.value)).reason == "TENANT_MISSING"


@pytest.mark.parametrize(("rpc", "request_", "field"), BAD_FILTERS)
async def test_an_organisations_bad_filter_is_invalid_field(
    database_url, kyc_tier, rpc: str, request_: Any, field: str
) -> None:
    org_id, _ = await new_org(database_url)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call_dashboard(kyc_tier, rpc, request_, org_id)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(status_from_rpc_error(refused.value))
    assert (info.reason, info.metadata["field"]) == ("INVALID_FIELD", field)


async def test_an_organisations_filtered_listings_answer_over_grpc(database_url, kyc_tier) -> None:
    org_id, _ = await new_org(database_url)
    queue = await call_dashboard(
        kyc_tier,
        "ListReviewQueue",
        dashboard_pb2.ListReviewQueueRequest(status=dashboard_pb2.REVIEW_STATUS_PENDING),
        org_id,
    )
    assert list(queue.items) == []
    events = await call_dashboard(
        kyc_tier,
        "ListTierEvents",
        dashboard_pb2.ListTierEventsRequest(start_time=Timestamp(seconds=1_700_000_000)),
        org_id,
    )
    assert list(events.events) == []
    attempts = await call_dashboard(
        kyc_tier,
        "ListAttempts",
        attempts_pb2.ListAttemptsRequest(
            kind=resources_pb2.VERIFICATION_KIND_STEP_UP,
            start_time=Timestamp(seconds=1_700_000_000),
        ),
        org_id,
    )
    assert list(attempts.attempts) == []


async def test_a_decision_sent_again_with_its_idempotency_key_is_decided_once(
    database_url, client, kyc_tier, fakes
) -> None:
    """The console's retry of one action (the first answer lost): the same key
    and decision answer the first response; the key with another decision is
    refused; a second decision without a key is REVIEW_ALREADY_DECIDED."""
    mine = await org_with_analyst(client, database_url)
    customer_id = await mine.customer(client, nik=NIK)
    held = fakes.matcher.enroll_reference(customer_id, active=False)
    review_id = await held_for_review(kyc_tier.core, mine.org_id, customer_id, held)
    path = f"/api/identity/review-queue/{review_id}/decision"
    decision = {"decision": "REVIEW_DECISION_APPROVE", "note": "same person"}
    keyed = mine.analyst.headers() | {"Idempotency-Key": unique_name("action")}

    first = await client.post(path, json=decision, headers=keyed)
    again = await client.post(path, json=decision, headers=keyed)

    assert first.status_code == 200, first.text
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert first.json()["tier"] == "KYC_TIER_STANDARD"
    audit = await rows(kyc_tier.core, models.AuditOutbox, action="review.decide")
    assert len([e for e in audit if e.org_id == mine.org_id]) == 1
    events = await rows(kyc_tier.core, models.TierEvent, customer_id=customer_id)
    assert len([e for e in events if e.to_tier == "standard"]) == 1
    reject = {"decision": "REVIEW_DECISION_REJECT", "note": "same person"}
    assert_error(await client.post(path, json=reject, headers=keyed), 409, "IDEMPOTENCY_KEY_REUSED")
    assert_error(await mine.analyst.post(path, decision), 400, "REVIEW_ALREADY_DECIDED")


async def test_an_erased_customers_pending_item_is_withdrawn_and_never_decided(
    database_url, client, kyc_tier, fakes
) -> None:
    """Erasure through the REST gateway: the customer's pending item leaves the
    queue, is listed as REVIEW_STATUS_WITHDRAWN, and a decision on it answers
    the declared 400 CUSTOMER_ERASED; the response a decision kept under an
    Idempotency-Key (its note may name the customer) is dropped."""
    mine = await org_with_analyst(client, database_url)
    customer_id = await mine.customer(client, nik=NIK)
    decided_id = await held_for_review(
        kyc_tier.core,
        mine.org_id,
        customer_id,
        fakes.matcher.enroll_reference(customer_id, active=False),
    )
    pending_id = await held_for_review(
        kyc_tier.core,
        mine.org_id,
        customer_id,
        fakes.matcher.enroll_reference(customer_id, active=False),
    )
    key = unique_name("action")
    keyed = mine.analyst.headers() | {"Idempotency-Key": key}
    first = await client.post(
        f"/api/identity/review-queue/{decided_id}/decision",
        json={"decision": "REVIEW_DECISION_REJECT", "note": "not Siti Rahayu on the card"},
        headers=keyed,
    )
    assert first.status_code == 200, first.text
    (kept,) = await rows(kyc_tier.core, IdempotentRequest, org_id=mine.org_id, idempotency_key=key)
    assert kept.customer_id == customer_id

    erased = await client.post(
        f"/api/identity/customers/{customer_id}/erase",
        json={"reason": "data_subject_request"},
        headers=bearer(mine.key),
    )
    assert erased.status_code == 200, erased.text

    assert (
        await rows(kyc_tier.core, IdempotentRequest, org_id=mine.org_id, idempotency_key=key) == []
    )
    pending = await mine.analyst.get("/api/identity/review-queue")
    assert pending_id not in [i["reviewId"] for i in pending.json()["items"]]
    withdrawn = await mine.analyst.get("/api/identity/review-queue?status=REVIEW_STATUS_WITHDRAWN")
    assert withdrawn.status_code == 200, withdrawn.text
    (item,) = withdrawn.json()["items"]
    assert (item["reviewId"], item["status"]) == (pending_id, "REVIEW_STATUS_WITHDRAWN")
    assert item["decidedBy"] == f"erasure:{erased.json()['erasureId']}" and item["decidedAt"]
    rejected = await mine.analyst.get("/api/identity/review-queue?status=REVIEW_STATUS_REJECTED")
    assert decided_id in [i["reviewId"] for i in rejected.json()["items"]]
    (decided,) = await rows(kyc_tier.core, models.ReviewItem, review_id=decided_id)
    assert (decided.status, decided.note) == ("rejected", None)  # the note may name them
    decision = {"decision": "REVIEW_DECISION_APPROVE", "note": ""}
    refused = await mine.analyst.post(f"/api/identity/review-queue/{pending_id}/decision", decision)
    assert_error(refused, 400, "CUSTOMER_ERASED")
    assert_documented(refused)
    audit = await rows(kyc_tier.core, models.AuditOutbox, action="review.withdraw")
    assert [e.details["review_id"] for e in audit if e.org_id == mine.org_id] == [pending_id]
