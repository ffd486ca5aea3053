"""Review items an erasure closes without a decision (REVIEW_STATUS_WITHDRAWN).

A pending item of an erased customer could never be decided (the decision
needs the customer's data), so it would wait in the queue forever. The
erasure's `kyc.personal_data` step withdraws every pending item of the
customer in its own transaction, each with a `review.withdraw` audit entry
(ids only) and a `review.withdrawn` webhook event (ids only, queued in that
same transaction: the organisation's endpoints subscribed to it learn the
item will never be decided); `kyc.mark_erased` does it again for an erasure
recorded before this step withdrew anything, and so does the recovery pass
(`recovery.ErasedReviews`) for a customer erased before withdrawals existed.
All are idempotent: a redone step finds nothing pending, so nothing is
withdrawn, audited or announced twice. A withdrawn item is refused to a
decision with FAILED_PRECONDITION / CUSTOMER_ERASED, as a pending item of a
customer being erased is. The same step drops the analysts' notes on the
customer's items (`forget_notes`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from identity_runtime.errors import FailedPrecondition
from services.kyc_tier import models, outbox, webhook_events

WITHDRAWN = "withdrawn"
# Who closed a withdrawn item (its `decided_by`), with the erasure's id.
WITHDRAWN_BY = "erasure:"


def customer_erased() -> FailedPrecondition:
    """The refusal of a decision on an item whose customer is (being) erased."""
    return FailedPrecondition(
        "the review item's customer was erased: the item is withdrawn and cannot be decided",
        "CUSTOMER_ERASED",
    )


def forget_notes(session: Session, org_id: str, customer_id: str) -> None:
    """An erasure drops the analysts' notes on the customer's items (free text
    that may name them); the decisions themselves stay, as records."""
    items = models.ReviewItem
    session.execute(
        update(items)
        .where(items.org_id == org_id, items.customer_id == customer_id)
        .values(note=None)
    )


def withdraw_pending(
    session: Session, org_id: str, customer_id: str, erasure_id: str, now: datetime
) -> int:
    """Close the customer's pending review items as withdrawn, each audited
    and announced (`review.withdrawn`); how many."""
    items = models.ReviewItem
    pending = session.scalars(
        select(items)
        .where(
            items.org_id == org_id,
            items.customer_id == customer_id,
            items.status == "pending",
        )
        .order_by(items.created_at, items.review_id)
        .with_for_update()
    ).all()
    for item in pending:
        item.status = WITHDRAWN
        item.decided_by = WITHDRAWN_BY + erasure_id
        item.decided_at = now
        outbox.record(
            session,
            org_id,
            "review.withdraw",
            f"customer:{customer_id}",
            "success",
            details={
                "review_id": item.review_id,
                "erasure_id": erasure_id,
                "kind": item.kind,
            },
        )
        webhook_events.announce_withdrawn(session, item, erasure_id)
    return len(pending)
