"""Issue 10's trust fixes in kyc-tier's flows, with fake ports, on SQLite and
PostgreSQL: a duplicate face waits for an analyst with its reference held
inactive."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from identity_runtime.errors import DomainError
from services.kyc_tier import models
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.customers import CustomerInput
from services.kyc_tier.flows.face import MatchRequest
from services.kyc_tier.flows.ktp import KtpCaptureRequest
from services.kyc_tier.flows.step_up import StepUpRequest
from services.kyc_tier.ports import Duplicate, KtpAssessment, KtpField
from tests.support import unique_name
from tests.support.kyc_fakes import KycFakes, capture_bundle, fake_kyc_core, new_org, rows

VALID_NIK = "3273024107950003"
CARD = KtpAssessment(
    passed=True,
    reasons=(),
    fields={"nik": KtpField(VALID_NIK, 0.98), "name": KtpField("SITI RAHAYU", 0.91)},
    nik_valid=True,
    tamper=(),
    portrait_found=True,
    ocr_model="fake-ocr",
    portrait_crops="portrait",
)


@pytest.fixture
def fakes() -> KycFakes:
    return KycFakes()


@pytest.fixture
async def core(database_url: str, fakes: KycFakes) -> AsyncIterator[KycTierCore]:
    async with fake_kyc_core(database_url, fakes) as built:
        yield built


async def new_customer(core: KycTierCore, org_id: str, nik: str = VALID_NIK) -> str:
    created = await core.customers.create(
        org_id, CustomerInput(external_id=unique_name("ext"), full_name="Siti Rahayu", nik=nik)
    )
    return created.customer.customer_id


async def ktp_capture(core: KycTierCore, org_id: str, customer_id: str):
    request = KtpCaptureRequest(customer_id, "chl_k", capture_bundle(frames=1), {"nik": VALID_NIK})
    return await core.ktp.capture(org_id, request)


async def test_a_duplicate_face_needs_review_links_both_and_holds_the_reference(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    fakes.quality.ktp = CARD
    first = await new_customer(core, org_id)
    assert (await ktp_capture(core, org_id, first)).verification.outcome == "passed"

    second = await new_customer(core, org_id)
    fakes.matcher.duplicates = (Duplicate(first, 0.93),)
    result = await ktp_capture(core, org_id, second)

    verification = result.verification
    assert verification.outcome == "needs_review"
    assert [r.code for r in verification.reasons] == ["DUPLICATE_FACE"]
    assert result.tier == "basic"  # a card waiting for review earns nothing yet
    (review,) = await rows(core, models.ReviewItem, customer_id=second)
    assert review.verification_id == verification.verification_id
    assert review.status == "pending"
    assert review.details == {
        "duplicate_customers": [first],
        "enrollment_id": result.enrollment_id,
    }
    (attempt,) = await rows(core, models.Attempt, customer_id=second, kind="ktp_capture")
    assert attempt.outcome == "needs_review"
    (audit,) = await rows(
        core, models.AuditOutbox, action="ktp.capture", subject=f"customer:{second}"
    )
    assert audit.details["duplicate_customers"] == first
    assert audit.outcome == "denied"

    # The held reference is inactive: match and step-up against it do not pass.
    (held,) = fakes.matcher.enrollments[second]
    assert (held.enrollment_id, held.active) == (result.enrollment_id, False)
    with pytest.raises(DomainError) as no_match:
        await core.face.match(org_id, MatchRequest(second, probe_image=b"probe"))
    assert no_match.value.reason == "NO_ACTIVE_ENROLLMENT"
    with pytest.raises(DomainError) as no_step_up:
        await core.step_up.step_up(
            org_id, StepUpRequest(second, "chl_s", capture_bundle(), action="transfer")
        )
    assert no_step_up.value.reason == "NO_ACTIVE_ENROLLMENT"
    # The first customer's reference is untouched.
    assert [e.active for e in fakes.matcher.enrollments[first]] == [True]


async def test_a_failed_card_with_a_duplicate_face_is_failed_not_reviewed(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    customer_id = await new_customer(core, org_id)
    fakes.quality.ktp = replace(CARD, passed=False)
    fakes.matcher.duplicates = (Duplicate("cus_other", 0.9),)
    result = await ktp_capture(core, org_id, customer_id)
    assert result.verification.outcome == "failed"
    assert await rows(core, models.ReviewItem, customer_id=customer_id) == []
    assert fakes.embedder.embedded == []
