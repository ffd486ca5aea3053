"""A selfie held as a duplicate face gets an analyst path, with fake ports, on
SQLite and PostgreSQL: the face-liveness verification that matching holds
(another customer's face matches) creates one review item like a KTP card's,
a replay creates no second one, and an analyst's decision activates or
retires the held reference through the same path as a KTP duplicate."""

from __future__ import annotations

import asyncio

import pytest

from identity_runtime import context
from identity_runtime.errors import DomainError
from services.kyc_tier import models
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.customers import CustomerInput
from services.kyc_tier.flows.dashboard import ReviewQuery
from services.kyc_tier.flows.face import LivenessRequest, LivenessResult
from services.kyc_tier.ports import Duplicate
from tests.support import unique_name
from tests.support.kyc_fakes import (
    Gate,
    KycFakes,
    capture_bundle,
    new_org,
    rows,
)


async def new_customer(core: KycTierCore, org_id: str) -> str:
    created = await core.customers.create(
        org_id,
        CustomerInput(
            external_id=unique_name("ext"), full_name="Siti Rahayu", email="siti@example.com"
        ),
    )
    return created.customer.customer_id


async def selfie(
    core: KycTierCore, org_id: str, customer_id: str, request: LivenessRequest | None = None
) -> LivenessResult:
    request = request or LivenessRequest(customer_id, "chl_f", capture_bundle())
    return await core.face.check_liveness(org_id, request)


async def held_selfie(
    core: KycTierCore, fakes: KycFakes, org_id: str
) -> tuple[str, str, LivenessResult]:
    """(the other customer, the held customer, the held selfie's result)."""
    first = await new_customer(core, org_id)
    fakes.matcher.enroll_reference(first, "onboarding_selfie")
    second = await new_customer(core, org_id)
    fakes.matcher.duplicates = (Duplicate(first, 0.93),)
    result = await selfie(core, org_id, second)
    fakes.matcher.duplicates = ()
    return first, second, result


async def test_a_duplicate_selfie_creates_one_review_item_like_a_ktp_card(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    first, second, result = await held_selfie(core, fakes, org_id)

    verification = result.recorded.verification
    assert verification.outcome == "needs_review"
    assert [r.code for r in verification.reasons] == ["DUPLICATE_FACE"]
    enrollment_id = result.assessment.enrollment_id
    assert enrollment_id
    (held,) = fakes.matcher.enrollments[second]
    assert (held.enrollment_id, held.active) == (enrollment_id, False)
    (review,) = await rows(core, models.ReviewItem, customer_id=second)
    assert (review.verification_id, review.kind, review.status) == (
        verification.verification_id,
        "face_liveness",
        "pending",
    )
    assert review.details == {"duplicate_customers": [first], "enrollment_id": enrollment_id}
    assert [r["code"] for r in review.reasons] == ["DUPLICATE_FACE"]
    (attempt,) = await rows(core, models.Attempt, customer_id=second, kind="face_liveness")
    assert attempt.outcome == "needs_review"
    (audit,) = await rows(
        core, models.AuditOutbox, action="face.liveness", subject=f"customer:{second}"
    )
    assert audit.details["duplicate_customers"] == first
    assert audit.outcome == "denied"
    # The console's queue shows it, naming the other customer.
    queue = await core.dashboard.review_queue(
        org_id, ReviewQuery(kind="face_liveness", customer_id=second), 50, ""
    )
    (item,) = [i for i in queue.items if i.review_id == review.review_id]
    assert item.duplicate_customer_ids == (first,)
    # The other customer is untouched.
    assert [e.active for e in fakes.matcher.enrollments[first]] == [True]


async def test_a_replayed_duplicate_selfie_creates_no_second_review_item(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    first = await new_customer(core, org_id)
    second = await new_customer(core, org_id)
    fakes.matcher.duplicates = (Duplicate(first, 0.93),)
    request = LivenessRequest(second, "chl_f", capture_bundle())
    original = await selfie(core, org_id, second, request)
    again = await selfie(core, org_id, second, request)

    assert again.replayed
    assert again.recorded.verification.verification_id == (
        original.recorded.verification.verification_id
    )
    assert again.recorded.verification.outcome == "needs_review"
    assert again.assessment.duplicates == (Duplicate(first, 0.0),)
    assert len(await rows(core, models.ReviewItem, customer_id=second)) == 1
    assert len(fakes.matcher.enrollments[second]) == 1


async def test_a_second_selfie_while_the_first_runs_is_refused_before_any_model_call(
    core: KycTierCore, fakes: KycFakes
) -> None:
    """Two selfies of one customer at once (a partner retrying a slow call with
    a new capture) would both pass the pending-review check, enroll twice and
    open two review items on one person: while the first is assessed, the
    second is refused (ABORTED / CAPTURE_IN_PROGRESS), as an attempt refused
    and audited; the first is then held as before."""
    org_id = await new_org(core)
    first = await new_customer(core, org_id)
    fakes.matcher.enroll_reference(first, "onboarding_selfie")
    second = await new_customer(core, org_id)
    fakes.matcher.duplicates = (Duplicate(first, 0.93),)
    gate = fakes.quality.gate = Gate()
    running = asyncio.create_task(selfie(core, org_id, second))
    try:
        await gate.entered.wait()
        with pytest.raises(DomainError) as refused:
            await selfie(core, org_id, second)
    finally:
        gate.release.set()
        held = await running
    assert (refused.value.code, refused.value.reason) == ("ABORTED", "CAPTURE_IN_PROGRESS")
    assert refused.value.metadata == {"retry_after_seconds": "2"}
    # The second never reached capture-quality (the first's call is the one).
    assert len(fakes.quality.face_calls) == 1

    assert held.recorded.verification.outcome == "needs_review"
    assert len(await rows(core, models.ReviewItem, customer_id=second)) == 1
    assert len(fakes.matcher.enrollments[second]) == 1
    attempts = await rows(core, models.Attempt, customer_id=second, kind="face_liveness")
    assert sorted(a.outcome for a in attempts) == ["needs_review", "refused"]
    audits = await rows(core, models.AuditOutbox, subject=f"customer:{second}")
    assert ("face.liveness", "denied", "CAPTURE_IN_PROGRESS") in {
        (a.action, a.outcome, a.details.get("reason")) for a in audits
    }
    # Once answered, the next selfie meets the pending review, as before.
    with pytest.raises(DomainError) as pending:
        await selfie(core, org_id, second)
    assert pending.value.reason == "REVIEW_PENDING"


async def test_selfies_of_two_customers_run_at_once(core: KycTierCore, fakes: KycFakes) -> None:
    """Only the same customer's captures wait for each other."""
    org_id = await new_org(core)
    one, other = await new_customer(core, org_id), await new_customer(core, org_id)
    gate = fakes.quality.gate = Gate()
    running = asyncio.create_task(selfie(core, org_id, one))
    try:
        await gate.entered.wait()
        assert (await selfie(core, org_id, other)).recorded.verification.outcome == "passed"
    finally:
        gate.release.set()
        assert (await running).recorded.verification.outcome == "passed"


async def test_a_selfie_without_a_duplicate_creates_no_review_item(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    customer_id = await new_customer(core, org_id)
    result = await selfie(core, org_id, customer_id)
    assert result.recorded.verification.outcome == "passed"
    assert "duplicate_customers" not in result.recorded.verification.details
    assert [e.active for e in fakes.matcher.enrollments[customer_id]] == [True]
    assert await rows(core, models.ReviewItem, customer_id=customer_id) == []


async def test_approving_a_held_selfie_activates_its_reference(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    _, customer_id, result = await held_selfie(core, fakes, org_id)
    (review,) = await rows(core, models.ReviewItem, customer_id=customer_id)
    token = context.bind(
        context.CallContext(request_id="r", org_id=org_id, actor="api_key:key_analyst")
    )
    try:
        decided = await core.reviews.decide(org_id, review.review_id, "approve", "same person")
    finally:
        context.reset(token)

    assert (decided.item.status, decided.item.decided_by) == ("approved", "api_key:key_analyst")
    (held,) = fakes.matcher.enrollments[customer_id]
    assert (held.enrollment_id, held.active) == (result.assessment.enrollment_id, True)
    verdicts = await rows(core, models.Verification, customer_id=customer_id, outcome="passed")
    (verdict,) = verdicts
    assert verdict.kind == "face_liveness"
    assert verdict.details["review_id"] == review.review_id
    assert verdict.details["reviewed_verification_id"] == review.verification_id
    (audit,) = await rows(core, models.AuditOutbox, action="review.decide")
    assert (audit.details["decision"], audit.details["enrollment_id"]) == (
        "approved",
        held.enrollment_id,
    )
    with pytest.raises(DomainError) as again:
        await core.reviews.decide(org_id, review.review_id, "reject", "")
    assert again.value.reason == "REVIEW_ALREADY_DECIDED"


async def test_rejecting_a_held_selfie_retires_its_reference(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    first, customer_id, result = await held_selfie(core, fakes, org_id)
    (review,) = await rows(core, models.ReviewItem, customer_id=customer_id)
    decided = await core.reviews.decide(org_id, review.review_id, "reject", "")

    assert decided.item.status == "rejected"
    (held,) = fakes.matcher.enrollments[customer_id]
    assert held.enrollment_id == result.assessment.enrollment_id
    assert held.retired_at is not None and not held.active
    assert [e.active for e in fakes.matcher.enrollments[first]] == [True]
    (verdict,) = await rows(core, models.Verification, customer_id=customer_id, outcome="failed")
    assert (verdict.kind, verdict.details["review_id"]) == ("face_liveness", review.review_id)
    (audit,) = await rows(core, models.AuditOutbox, action="review.decide")
    assert audit.details["decision"] == "rejected"
