"""A Dukcapil portrait never silently replaces a customer's verified face
(probe4 finding 2), with fake ports on SQLite and PostgreSQL: a customer
with an active reference keeps it unless the portrait matches it at the
organisation's threshold; a portrait of someone else is refused
(PORTRAIT_MISMATCH) as a refused, audited attempt with nothing else
written. A matching portrait, or one for a customer with no reference yet,
is enrolled as before. The same with real models: tests/e2e/test_org_settings_mesh.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from identity_runtime.errors import DomainError
from services.kyc_tier import models, records
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.customers import CustomerInput
from services.kyc_tier.flows.dukcapil import DukcapilRequest, DukcapilVerdict
from services.kyc_tier.ports import Reason
from tests.support import unique_name
from tests.support.kyc_fakes import KycFakes, new_org, rows

VALID_NIK = "3273024107950003"
PORTRAIT = b"registry portrait"


async def customer_with_reference(core: KycTierCore, fakes: KycFakes, org_id: str) -> str:
    """A customer whose KTP card portrait is their active reference."""
    created = await core.customers.create(
        org_id, CustomerInput(external_id=unique_name("ext"), nik=VALID_NIK)
    )
    customer_id = created.customer.customer_id
    fakes.matcher.enroll_reference(customer_id, "ktp_extract")
    return customer_id


def portrait_verdict(customer_id: str) -> DukcapilRequest:
    verdict = DukcapilVerdict(
        {"nik": True, "full_name": True}, 0.0, "DKC-P", datetime.now(UTC) - timedelta(hours=1)
    )
    return DukcapilRequest(customer_id, verdict, portrait=PORTRAIT)


async def verification_ids(core: KycTierCore, customer_id: str) -> list[str]:
    return [
        v.verification_id for v in await rows(core, models.Verification, customer_id=customer_id)
    ]


def references(fakes: KycFakes, customer_id: str) -> list[tuple[str, bool]]:
    return [(e.source, e.active) for e in fakes.matcher.enrollments.get(customer_id, [])]


async def test_a_portrait_of_another_face_is_refused_and_writes_nothing(
    core: KycTierCore, fakes: KycFakes
) -> None:
    # 0.8 clears matching's default threshold but not this organisation's.
    org_id = await new_org(core, match_threshold=0.85)
    customer_id = await customer_with_reference(core, fakes, org_id)
    before = await verification_ids(core, customer_id)

    with pytest.raises(DomainError) as refused:
        await core.dukcapil.submit(org_id, portrait_verdict(customer_id))

    error = refused.value
    assert (error.code, error.reason) == ("FAILED_PRECONDITION", "PORTRAIT_MISMATCH")
    assert error.metadata == {"field": "portrait.data"}
    assert fakes.matcher.verified == [(customer_id, 0.85)]  # the organisation's threshold
    assert references(fakes, customer_id) == [("ktp_extract", True)]  # untouched
    assert await verification_ids(core, customer_id) == before  # the NIK check's only
    assert await rows(core, models.ReviewItem, customer_id=customer_id) == []
    customer = (await rows(core, models.Customer, customer_id=customer_id))[0]
    assert customer.tier == "basic"
    (attempt,) = await rows(core, models.Attempt, customer_id=customer_id, kind="dukcapil_verdict")
    assert attempt.outcome == "refused" and attempt.reasons[0]["code"] == "PORTRAIT_MISMATCH"
    denied = await rows(core, models.AuditOutbox, action="dukcapil.submit", outcome="denied")
    assert [e.details["reason"] for e in denied] == ["PORTRAIT_MISMATCH"]
    assert await rows(core, models.AuditOutbox, action="dukcapil.submit", outcome="success") == []


async def test_a_portrait_of_the_verified_face_becomes_the_reference(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core, match_threshold=0.7)
    customer_id = await customer_with_reference(core, fakes, org_id)

    result = await core.dukcapil.submit(org_id, portrait_verdict(customer_id))

    assert result.recorded.verification.outcome == "passed"
    assert fakes.matcher.verified == [(customer_id, 0.7)]
    assert references(fakes, customer_id)[-1] == ("dukcapil", True)
    assert (
        result.assessment.enrollment_id == fakes.matcher.enrollments[customer_id][-1].enrollment_id
    )


async def test_without_a_verified_face_the_portrait_is_the_first_reference(
    core: KycTierCore, fakes: KycFakes
) -> None:
    """Nothing to compare with: no verification against a reference, enrolled as before."""
    org_id = await new_org(core)
    created = await core.customers.create(
        org_id, CustomerInput(external_id=unique_name("ext"), nik=VALID_NIK)
    )
    customer_id = created.customer.customer_id
    fakes.matcher.score = 0.1  # would be a mismatch, were there a reference

    result = await core.dukcapil.submit(org_id, portrait_verdict(customer_id))

    assert result.recorded.verification.outcome == "passed"
    assert fakes.matcher.verified == []
    assert references(fakes, customer_id) == [("dukcapil", True)]


async def test_a_negative_verdict_compares_nothing(core: KycTierCore, fakes: KycFakes) -> None:
    org_id = await new_org(core)
    customer_id = await customer_with_reference(core, fakes, org_id)
    fakes.matcher.score = 0.1
    request = portrait_verdict(customer_id)
    negative = DukcapilRequest(
        customer_id,
        DukcapilVerdict({"nik": False}, 0.0, "DKC-N", request.verdict.verified_at),
        portrait=PORTRAIT,
    )

    result = await core.dukcapil.submit(org_id, negative)

    assert result.recorded.verification.outcome == "failed"
    assert fakes.matcher.verified == []
    assert references(fakes, customer_id) == [("ktp_extract", True)]


async def test_a_portrait_waits_while_a_held_card_waits_for_review(
    core: KycTierCore, fakes: KycFakes
) -> None:
    """The re-probe's R1: a card held as a duplicate face leaves no active
    reference to compare with; the portrait of someone else used to become
    the active face ahead of the analyst. It waits now (REVIEW_PENDING),
    before any model call, refused and audited, nothing else written; once
    the review is decided it is compared as above."""
    org_id = await new_org(core)
    created = await core.customers.create(
        org_id, CustomerInput(external_id=unique_name("ext"), nik=VALID_NIK)
    )
    customer_id = created.customer.customer_id
    held = fakes.matcher.enroll_reference(customer_id, "ktp_extract", active=False)

    def hold_card(session) -> None:
        customer = records.load_customer(session, org_id, customer_id, for_update=True)
        records.add_verification(
            session,
            customer,
            "ktp_capture",
            None,
            (Reason("DUPLICATE_FACE", "the portrait matches another customer"),),
            review_details={"enrollment_id": held, "duplicate_customers": ["cus_other"]},
        )

    await core.database.run(hold_card)
    before = await verification_ids(core, customer_id)

    with pytest.raises(DomainError) as refused:
        await core.dukcapil.submit(org_id, portrait_verdict(customer_id))

    error = refused.value
    assert (error.code, error.reason) == ("FAILED_PRECONDITION", "REVIEW_PENDING")
    assert error.metadata == {"kind": "ktp_capture"}
    assert ("reference", 1) not in fakes.quality.face_calls and fakes.matcher.verified == []
    assert references(fakes, customer_id) == [("ktp_extract", False)]
    assert await verification_ids(core, customer_id) == before
    (attempt,) = await rows(core, models.Attempt, customer_id=customer_id, kind="dukcapil_verdict")
    assert attempt.outcome == "refused" and attempt.reasons[0]["code"] == "REVIEW_PENDING"
    denied = await rows(core, models.AuditOutbox, action="dukcapil.submit", outcome="denied")
    assert [e.details["reason"] for e in denied] == ["REVIEW_PENDING"]
