"""A held KTP card (its portrait matched another customer's face) while its
review item is pending, and after an analyst decides it, with fake ports, on
SQLite and PostgreSQL: a new card is refused (REVIEW_PENDING) before any model
call, writes no verification and is audited as refused, as a new selfie is
while a held selfie waits; a replay of the held card still answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from services.kyc_tier import models
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.flows.ktp import KtpCaptureRequest, KtpCaptureResult
from services.kyc_tier.records import VerificationRecord
from tests.integration.test_kyc_trust import CARD, VALID_NIK
from tests.support.held_review import HeldCapture, held_duplicate, holding
from tests.support.kyc_fakes import (
    KycFakes,
    capture_bundle,
    rows,
)


def card_request(customer_id: str) -> KtpCaptureRequest:
    return KtpCaptureRequest(customer_id, "chl_k", capture_bundle(frames=1), {"nik": VALID_NIK})


@dataclass
class HeldCard(HeldCapture):
    """A customer whose KTP card portrait matched another customer's face."""

    request: KtpCaptureRequest

    async def new_card(self) -> KtpCaptureResult:
        return await self.core.ktp.capture(self.org_id, card_request(self.customer_id))


async def hold_a_card(core: KycTierCore, fakes: KycFakes) -> HeldCard:
    fakes.quality.ktp = CARD

    async def capture(org_id: str, request: KtpCaptureRequest) -> VerificationRecord:
        return (await core.ktp.capture(org_id, request)).verification

    return await held_duplicate(core, fakes, "ktp_extract", card_request, capture, HeldCard)


@pytest.fixture
async def held(database_url: str) -> AsyncIterator[HeldCard]:
    async with holding(database_url, hold_a_card) as made:
        yield made


async def test_a_new_card_while_the_held_one_waits_is_refused_and_writes_nothing(
    held: HeldCard,
) -> None:
    await held.assert_new_capture_refused(held.new_card, "ktp_capture")
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
