"""A held KTP card (its portrait matched another customer's face) while its
review item is pending, and after an analyst decides it, with fake ports, on
SQLite and PostgreSQL: a new card is refused (REVIEW_PENDING) before any model
call, writes no verification and is audited as refused, as a new selfie is
while a held selfie waits; a replay of the held card still answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from identity_runtime.errors import DomainError
from services.kyc_tier import models
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.customers import CustomerInput
from services.kyc_tier.flows.ktp import KtpCaptureRequest, KtpCaptureResult
from services.kyc_tier.ports import Duplicate, KtpAssessment, KtpField
from tests.support import unique_name
from tests.support.kyc_fakes import (
    KycFakes,
    assert_audit_entries_acceptable,
    capture_bundle,
    fake_kyc_core,
    new_org,
    rows,
)

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


def card_request(customer_id: str) -> KtpCaptureRequest:
    return KtpCaptureRequest(customer_id, "chl_k", capture_bundle(frames=1), {"nik": VALID_NIK})


@dataclass
class HeldCard:
    """A customer whose KTP card portrait matched another customer's face."""

    core: KycTierCore
    fakes: KycFakes
    org_id: str
    customer_id: str
    request: KtpCaptureRequest
    verification_id: str

    async def rows(self, model: Any, **where: Any) -> list[Any]:
        return await rows(self.core, model, customer_id=self.customer_id, **where)

    async def decide(self, decision: str) -> None:
        (review,) = await self.rows(models.ReviewItem)
        await self.core.reviews.decide(self.org_id, review.review_id, decision, "")

    async def new_card(self) -> KtpCaptureResult:
        return await self.core.ktp.capture(self.org_id, card_request(self.customer_id))

    def forget_model_calls(self) -> None:
        self.fakes.quality.ktp_calls.clear()
        self.fakes.liveness.checks.clear()
        self.fakes.embedder.embedded.clear()
        self.fakes.matcher.verified.clear()

    def assert_no_model_call(self) -> None:
        assert self.fakes.quality.ktp_calls == []
        assert self.fakes.liveness.checks == []
        assert self.fakes.embedder.embedded == []
        assert self.fakes.matcher.verified == []


async def hold_a_card(core: KycTierCore, fakes: KycFakes) -> HeldCard:
    org_id = await new_org(core)
    fakes.quality.ktp = CARD
    other = await core.customers.create(org_id, CustomerInput(unique_name("ext")))
    fakes.matcher.enroll_reference(other.customer.customer_id, "ktp_extract")
    created = await core.customers.create(org_id, CustomerInput(unique_name("ext")))
    customer_id = created.customer.customer_id
    fakes.matcher.duplicates = (Duplicate(other.customer.customer_id, 0.93),)
    request = card_request(customer_id)
    held = (await core.ktp.capture(org_id, request)).verification
    fakes.matcher.duplicates = ()
    assert held.outcome == "needs_review"
    return HeldCard(core, fakes, org_id, customer_id, request, held.verification_id)


@pytest.fixture
async def held(database_url: str) -> AsyncIterator[HeldCard]:
    fakes = KycFakes()
    async with fake_kyc_core(database_url, fakes) as core:
        yield await hold_a_card(core, fakes)
        await assert_audit_entries_acceptable(core)


async def test_a_new_card_while_the_held_one_waits_is_refused_and_writes_nothing(
    held: HeldCard,
) -> None:
    held.forget_model_calls()
    with pytest.raises(DomainError) as refused:
        await held.new_card()

    assert (refused.value.code, refused.value.reason) == ("FAILED_PRECONDITION", "REVIEW_PENDING")
    assert refused.value.metadata == {"kind": "ktp_capture"}
    held.assert_no_model_call()
    assert len(held.fakes.matcher.enrollments[held.customer_id]) == 1
    (verification,) = await held.rows(models.Verification)
    assert verification.verification_id == held.verification_id
    (review,) = await held.rows(models.ReviewItem)
    assert review.status == "pending"
    attempts = await held.rows(models.Attempt, kind="ktp_capture")
    assert sorted(a.outcome for a in attempts) == ["needs_review", "refused"]
    # The refusal is audited where the capture's outcomes are.
    audits = await rows(
        held.core,
        models.AuditOutbox,
        action="ktp.capture",
        subject=f"customer:{held.customer_id}",
    )
    refusals = [a for a in audits if a.details.get("reason") == "REVIEW_PENDING"]
    assert len(refusals) == 1 and refusals[0].outcome == "denied"

    # The held card's own replay still answers as it did.
    again = await held.core.ktp.capture(held.org_id, held.request)
    assert again.replayed and again.verification.verification_id == held.verification_id
    assert len(await held.rows(models.ReviewItem)) == 1


@pytest.mark.parametrize("decision", ["approve", "reject"])
async def test_once_decided_a_new_card_is_captured(held: HeldCard, decision: str) -> None:
    await held.decide(decision)
    held.forget_model_calls()

    again = await held.new_card()

    assert again.verification.outcome == "passed"
    assert held.fakes.quality.ktp_calls == [1]
    assert len(await held.rows(models.ReviewItem)) == 1
