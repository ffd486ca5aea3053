"""An upgrade citing an approved review (probe4 finding 1), with fake ports, on
SQLite and PostgreSQL: a review stands in for the step it held and nothing
else (a card's review unlocks at most standard, a selfie's never the face
match or the NIK), it is cited once, and every refusal is audited as a
denied `kyc.upgrade` entry."""

from __future__ import annotations

import asyncio

import pytest

from identity_runtime.errors import DomainError
from services.kyc_tier import models, records, tiers
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.flows.kyc import UpgradeRequest
from tests.integration.test_kyc_held_selfie import held_selfie
from tests.integration.test_kyc_trust import duplicate_review, new_customer
from tests.support.kyc_fakes import KycFakes, calling_as, new_org, rows


async def upgrade(core: KycTierCore, org_id: str, customer_id: str, target: str, review_id: str):
    with calling_as(org_id, "public", "internal"):
        return await core.kyc.upgrade(
            org_id, customer_id, UpgradeRequest(target, review_id=review_id, note="checked")
        )


async def refused(
    core: KycTierCore, org_id: str, customer_id: str, target: str, review_id: str
) -> DomainError:
    with pytest.raises(DomainError) as raised:
        await upgrade(core, org_id, customer_id, target, review_id)
    return raised.value


async def denied_upgrades(core: KycTierCore, customer_id: str) -> list[tuple[str, str, str]]:
    entries = await rows(
        core,
        models.AuditOutbox,
        action="kyc.upgrade",
        subject=f"customer:{customer_id}",
        outcome="denied",
    )
    return [
        (e.details["reason"], e.details["target_tier"], e.details["review_id"]) for e in entries
    ]


async def approve(core: KycTierCore, org_id: str, review_id: str) -> str:
    return (await core.reviews.decide(org_id, review_id, "approve", "same person")).tier


async def test_a_card_review_unlocks_standard_once_and_never_premium(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    customer_id, review_id = await duplicate_review(core, fakes, org_id)
    assert await approve(core, org_id, review_id) == "standard"

    # The probe's request: a card's review cited for premium, no liveness, no match.
    beyond = await refused(core, org_id, customer_id, "premium", review_id)
    assert (beyond.code, beyond.reason) == ("FAILED_PRECONDITION", "REVIEW_SCOPE_EXCEEDED")
    assert beyond.metadata == {"max_tier": "standard"}
    status = await core.kyc.status(org_id, customer_id)
    assert status.status.tier == "standard"
    assert {r.name: bool(r.satisfied_by) for r in status.status.requirements}["face_match"] is False

    granted = await upgrade(core, org_id, customer_id, "standard", review_id)
    assert granted.tier == "standard"
    (manual,) = await rows(core, models.Verification, customer_id=customer_id, kind="manual_review")
    assert (manual.outcome, manual.details["granted_tier"], manual.details["review_kind"]) == (
        "passed",
        "standard",
        "ktp_capture",
    )
    # Cited once: a second citation, for any tier, grants nothing.
    for target in ("standard", "premium"):
        again = await refused(core, org_id, customer_id, target, review_id)
        assert (again.code, again.reason) == ("ALREADY_EXISTS", "REVIEW_ALREADY_CITED")
        assert again.metadata == {"verification_id": manual.verification_id}
    assert len(await rows(core, models.Verification, kind="manual_review")) == 1
    assert (await core.kyc.status(org_id, customer_id)).status.tier == "standard"
    assert await denied_upgrades(core, customer_id) == [
        ("REVIEW_SCOPE_EXCEEDED", "premium", review_id),
        ("REVIEW_ALREADY_CITED", "standard", review_id),
        ("REVIEW_ALREADY_CITED", "premium", review_id),
    ]


async def test_a_selfie_review_stands_in_for_the_liveness_only(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    _, customer_id, held = await held_selfie(core, fakes, org_id)
    held_id = held.recorded.verification.verification_id
    (review,) = await rows(core, models.ReviewItem, verification_id=held_id)
    review_id = review.review_id
    # Approved, the selfie is a passed liveness; the customer, with no NIK, stays none.
    assert await approve(core, org_id, review_id) == "none"

    # The customer has no NIK, no card and no face match: the review of their
    # selfie vouches for none of these.
    premium = await refused(core, org_id, customer_id, "premium", review_id)
    assert premium.reason == "TIER_PREREQUISITE_MISSING"
    assert premium.metadata == {
        "missing": "valid_nik,ktp_capture_passed_or_dukcapil_verdict,face_match",
        "tier": "none",
    }
    basic = await refused(core, org_id, customer_id, "basic", review_id)
    assert basic.metadata["missing"] == "valid_nik"
    assert (await core.kyc.status(org_id, customer_id)).status.tier == "none"
    assert await rows(core, models.Verification, kind="manual_review") == []
    assert await denied_upgrades(core, customer_id) == [
        ("TIER_PREREQUISITE_MISSING", "premium", review_id),
        ("TIER_PREREQUISITE_MISSING", "basic", review_id),
    ]


async def test_a_review_grants_only_its_own_step_even_without_its_verdict(
    core: KycTierCore,
) -> None:
    """An approved card review whose verdict verification is missing (an
    older release recorded none) still lifts a basic customer to standard by
    its MANUAL_REVIEW, and no further."""
    org_id = await new_org(core)
    customer_id = await new_customer(core, org_id)

    def held_card(session) -> str:
        customer = records.load_customer(session, org_id, customer_id)
        row = records.add_verification(session, customer, tiers.KTP_CAPTURE, None)
        item = session.query(models.ReviewItem).filter_by(verification_id=row.verification_id)
        review = item.one()
        review.status = "approved"
        return review.review_id

    review_id = await core.database.run(held_card)
    assert (await core.kyc.status(org_id, customer_id)).status.tier == "basic"
    beyond = await refused(core, org_id, customer_id, "premium", review_id)
    assert beyond.reason == "REVIEW_SCOPE_EXCEEDED"
    granted = await upgrade(core, org_id, customer_id, "standard", review_id)
    assert granted.tier == "standard"
    assert granted.change is not None and granted.change.cause == "review_decision"


async def test_a_review_that_is_not_approved_or_of_no_step_grants_nothing(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    customer_id, review_id = await duplicate_review(core, fakes, org_id)
    pending = await refused(core, org_id, customer_id, "standard", review_id)
    assert (pending.reason, pending.metadata["missing"]) == (
        "TIER_PREREQUISITE_MISSING",
        "approved_review",
    )
    # A review of a kind no step raises (a step-up): it vouches for nothing.
    await core.database.run(
        lambda s: (
            s.query(models.ReviewItem)
            .filter_by(review_id=review_id)
            .update({"status": "approved", "kind": tiers.STEP_UP})
        )
    )
    nothing = await refused(core, org_id, customer_id, "basic", review_id)
    assert (nothing.reason, nothing.metadata) == ("REVIEW_SCOPE_EXCEEDED", {"max_tier": "none"})
    # Another customer's review is not found, for this customer.
    other_customer, other_review = await duplicate_review(core, fakes, org_id)
    foreign = await refused(core, org_id, customer_id, "standard", other_review)
    assert foreign.reason == "REVIEW_NOT_FOUND"
    assert [reason for reason, _, _ in await denied_upgrades(core, customer_id)] == [
        "TIER_PREREQUISITE_MISSING",
        "REVIEW_SCOPE_EXCEEDED",
        "REVIEW_NOT_FOUND",
    ]
    assert await denied_upgrades(core, other_customer) == []
    assert await rows(core, models.Verification, kind="manual_review") == []


async def test_two_concurrent_citations_of_one_review_grant_once(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    customer_id, review_id = await duplicate_review(core, fakes, org_id)
    await approve(core, org_id, review_id)
    answers = await asyncio.gather(
        *(upgrade(core, org_id, customer_id, "standard", review_id) for _ in range(3)),
        return_exceptions=True,
    )
    granted = [a for a in answers if not isinstance(a, BaseException)]
    refusals = [a.reason for a in answers if isinstance(a, DomainError)]
    assert (len(granted), refusals) == (1, ["REVIEW_ALREADY_CITED"] * 2), answers
    assert len(await rows(core, models.Verification, kind="manual_review")) == 1
