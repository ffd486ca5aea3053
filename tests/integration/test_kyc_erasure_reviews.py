"""An erasure closes the customer's pending review items without a decision
(withdrawn), on SQLite and PostgreSQL with fake ports: audited, out of the
pending queue, never decided (FAILED_PRECONDITION / CUSTOMER_ERASED), once
only when the erasure is resumed, and also for an erasure whose personal
data step ran before withdrawals existed."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from identity_runtime.errors import DomainError, FailedPrecondition
from identity_store.types import utcnow
from services.kyc_tier import erasures, models
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.flows import erasure
from services.kyc_tier.flows.dashboard import ReviewQuery
from services.kyc_tier.recovery import ErasedReviews
from tests.integration.test_kyc_trust import (
    crash_at,
    duplicate_review,
)
from tests.support.kyc_fakes import (
    KycFakes,
    fake_kyc_core,
    new_org,
    rows,
)


async def queue(core: KycTierCore, org_id: str, status: str = "") -> list[str]:
    page = await core.dashboard.review_queue(org_id, ReviewQuery(status=status), 50, "")
    return [item.review_id for item in page.items]


async def test_an_erasure_withdraws_the_customers_pending_review_items(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    customer_id, review_id = await duplicate_review(core, fakes, org_id)
    other_id, other_review = await duplicate_review(core, fakes, org_id)
    assert {review_id, other_review} <= set(await queue(core, org_id))

    receipt = await core.erasure.erase(org_id, customer_id, "data_subject_request")

    assert receipt.state == "completed"
    (item,) = await rows(core, models.ReviewItem, review_id=review_id)
    assert item.status == "withdrawn" and item.decided_at is not None
    assert item.decided_by == f"erasure:{receipt.erasure_id}"
    assert await queue(core, org_id) == [other_review]  # another customer's item stays
    assert await queue(core, org_id, "withdrawn") == [review_id]
    (audit,) = await rows(core, models.AuditOutbox, action="review.withdraw")
    assert audit.subject == f"customer:{customer_id}" and audit.outcome == "success"
    assert audit.details == {
        "review_id": review_id,
        "erasure_id": receipt.erasure_id,
        "kind": "ktp_capture",
    }
    step = await rows(core, models.ErasureStep, erasure_id=receipt.erasure_id)
    assert {s.step: s.result for s in step}[erasures.PERSONAL_DATA]["reviews_withdrawn"] == 1

    # Never decided: a declared, precise refusal, and nothing moves.
    for decision in ("approve", "reject"):
        with pytest.raises(FailedPrecondition) as refused:
            await core.reviews.decide(org_id, review_id, decision, "")
        assert refused.value.reason == "CUSTOMER_ERASED"
    assert (await rows(core, models.ReviewItem, review_id=review_id))[0].status == "withdrawn"
    assert await rows(core, models.AuditOutbox, action="review.decide") == []
    # The other customer's item is decided as ever.
    decided = await core.reviews.decide(org_id, other_review, "approve", "")
    assert decided.item.status == "approved" and other_id != customer_id


async def test_a_decided_item_stays_decided_and_a_decision_during_the_erasure_is_refused(
    core: KycTierCore, fakes: KycFakes
) -> None:
    org_id = await new_org(core)
    customer_id, review_id = await duplicate_review(core, fakes, org_id)
    await core.reviews.decide(org_id, review_id, "reject", "not Siti Rahayu")
    erasing, pending_id = await duplicate_review(core, fakes, org_id)
    await core.erasure.store.write(
        lambda s: erasures.record_request(
            s, org_id, erasing, "", utcnow(), erasure.ErasureFlow.lease
        )
    )
    # Recorded, not carried out yet: the item is still pending, and a decision
    # on it is refused as the withdrawn item's will be.
    assert (await rows(core, models.ReviewItem, review_id=pending_id))[0].status == "pending"
    with pytest.raises(FailedPrecondition) as refused:
        await core.reviews.decide(org_id, pending_id, "approve", "")
    assert refused.value.reason == "CUSTOMER_ERASED"

    await core.erasure.erase(org_id, customer_id, "")
    (kept,) = await rows(core, models.ReviewItem, review_id=review_id)
    # A decision is a record: an erasure keeps it, not the analyst's note.
    assert (kept.status, kept.note) == ("rejected", None)
    assert await rows(core, models.AuditOutbox, action="review.withdraw") == []
    with pytest.raises(DomainError) as again:
        await core.reviews.decide(org_id, review_id, "approve", "")
    assert again.value.reason == "REVIEW_ALREADY_DECIDED"


async def test_a_resumed_erasure_withdraws_once(database_url: str, fakes: KycFakes) -> None:
    """Killed right after the request was recorded, then after the personal
    data step: the restarted core withdraws the item exactly once."""
    later = erasure.ErasureFlow.lease + timedelta(seconds=1)
    for point in ("recorded", erasures.PERSONAL_DATA):
        async with fake_kyc_core(database_url, fakes) as first:
            org_id = await new_org(first)
            customer_id, review_id = await duplicate_review(first, fakes, org_id)
            first.erasure.fault = crash_at(point)
            with pytest.raises(erasure.ErasureInterrupted):
                await first.erasure.erase(org_id, customer_id, "")
        # The restarted process (its clock past the dead one's lease) resumes at start-up.
        async with fake_kyc_core(database_url, fakes, clock=lambda: utcnow() + later) as again:
            async with asyncio.timeout(30):
                await again.recovery.first_pass.wait()
            (record,) = await rows(again, models.Erasure, customer_id=customer_id)
            assert record.state == "completed", point
            (item,) = await rows(again, models.ReviewItem, review_id=review_id)
            assert item.status == "withdrawn", point
            withdrawn = await rows(again, models.AuditOutbox, action="review.withdraw")
            assert [e.details["review_id"] for e in withdrawn].count(review_id) == 1, point


async def test_an_erasure_recorded_before_withdrawals_withdraws_in_its_last_step(
    core: KycTierCore, fakes: KycFakes
) -> None:
    """An erasure whose personal data step was done by a release that did
    not withdraw: the last step (kyc.mark_erased) closes the items."""
    org_id = await new_org(core)
    customer_id, review_id = await duplicate_review(core, fakes, org_id)
    erasure_id, _ = await core.erasure.store.write(
        lambda s: erasures.record_request(
            s, org_id, customer_id, "", utcnow(), erasure.ErasureFlow.lease
        )
    )
    await core.erasure.store.write(
        lambda s: erasures.done(s, erasure_id, erasures.PERSONAL_DATA, {"keys_destroyed": 0}),
        audited=False,
    )
    assert await core.erasure.carry_out(erasure_id, leased=True)
    (item,) = await rows(core, models.ReviewItem, review_id=review_id)
    assert item.status == "withdrawn" and item.decided_by == f"erasure:{erasure_id}"
    assert await queue(core, org_id) == []


async def test_the_recovery_worker_withdraws_items_an_older_release_left_pending(
    core: KycTierCore, fakes: KycFakes
) -> None:
    """A customer erased by a release that did not withdraw: the recovery
    pass closes the pending item once (audited), and a second pass finds nothing."""
    org_id = await new_org(core)
    customer_id, review_id = await duplicate_review(core, fakes, org_id)
    _, other_review = await duplicate_review(core, fakes, org_id)
    receipt = await core.erasure.erase(org_id, customer_id, "")

    def as_left_by_the_older_release(session: Any) -> None:
        item = session.get(models.ReviewItem, review_id)
        item.status, item.decided_by, item.decided_at = "pending", None, None
        session.query(models.AuditOutbox).filter_by(action="review.withdraw").delete()

    await core.erasure.store.write(as_left_by_the_older_release, audited=False)
    assert review_id in await queue(core, org_id)

    sweep = ErasedReviews(core.erasure.store, utcnow)
    assert await sweep.sweep() == 1
    assert await sweep.sweep() == 0
    (item,) = await rows(core, models.ReviewItem, review_id=review_id)
    assert item.status == "withdrawn" and item.decided_by == f"erasure:{receipt.erasure_id}"
    assert await queue(core, org_id) == [other_review]  # an active customer's item stays
    (audit,) = await rows(core, models.AuditOutbox, action="review.withdraw")
    assert audit.details["review_id"] == review_id
