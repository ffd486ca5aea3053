"""An analyst's decision on a review item (internal scope).

    POST /api/identity/review-queue/{id}/decision

A duplicate face (a KTP card portrait, a Dukcapil portrait or an onboarding
selfie matching another customer) left the new customer's reference held
inactive in matching. Approving the item lifts the hold
(matching.ActivateEnrollment); rejecting it retires that one reference
(matching.RetireEnrollments, reason "review"). Matching is called first
(both calls are idempotent), then the decision is recorded and audited in
one transaction: a failure in between leaves the item pending and the
decision can simply be made again.

The decision is also the verdict on the verification under review (a
borderline KTP capture, a duplicate face): a new verification of the same
kind is recorded, passed on approval and failed on rejection, citing the
review (`details.review_id`, `details.reviewed_verification_id`), and the
tier is recomputed from the history; a change is a tier event (cause
`review_decision`, actor the analyst) and a `kyc.tier_changed` audit entry.
So approving a borderline KTP capture of a `basic` customer makes them
`standard`; a rejection never lowers a tier (failed verifications never do).
An approved item can still be cited, once, by an upgrade (`UpgradeKyc` with
`review_id`), which grants at most the tier the reviewed step leads to
(`tiers.REVIEW_SCOPES`).

While an item is pending, a new capture of its kind for that customer is
refused (FAILED_PRECONDITION / REVIEW_PENDING, `require_none_pending`): it
would enroll again and open another item on the same person. A flow that
cites a held verification (a face match citing a held selfie) follows its
verdict (`verdict_outcome`): approved, it is a passed one; rejected, refused
(TIER_PREREQUISITE_MISSING); pending, refused with REVIEW_PENDING.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity_runtime import context
from identity_runtime.errors import FailedPrecondition, NotFound, invalid_field
from identity_store.types import utcnow
from services.kyc_tier import (
    customers,
    models,
    outbox,
    records,
    tiers,
    webhook_events,
    withdrawals,
)
from services.kyc_tier.flows.prechecks import Precheck
from services.kyc_tier.ports import Matcher, Reason
from services.kyc_tier.reason_rows import with_stored_reasons
from services.kyc_tier.store import Store

DECISIONS = {"approve": "approved", "reject": "rejected"}
MAX_NOTE_LENGTH = 1000


@dataclass(frozen=True)
class ReviewView:
    review_id: str
    customer_id: str
    verification_id: str
    kind: str
    reasons: tuple[Reason, ...]
    status: str
    decided_by: str
    note: str
    created_at: datetime
    decided_at: datetime | None
    duplicate_customer_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviewDecided:
    item: ReviewView
    tier: str


def review_view(row: models.ReviewItem) -> ReviewView:
    return with_stored_reasons(
        ReviewView,
        row,
        decided_by=row.decided_by or "",
        note=row.note or "",
        duplicate_customer_ids=duplicate_customers(row),
    )


def duplicate_customers(row: models.ReviewItem) -> tuple[str, ...]:
    """The other customers an item names (a list, or a comma-separated
    string as some items store it)."""
    named = (row.details or {}).get("duplicate_customers", [])
    if isinstance(named, str):
        named = named.split(",")
    return tuple(str(c) for c in named if c and str(c) != row.customer_id)


def pending_kind(
    session: Session, org_id: str, customer_id: str, kind: str | None = None
) -> str | None:
    """The kind of a review of the customer's (of `kind`, if given) still
    waiting for an analyst, if any."""
    query = (
        select(models.ReviewItem.kind)
        .where(models.ReviewItem.org_id == org_id)
        .where(models.ReviewItem.customer_id == customer_id)
        .where(models.ReviewItem.status == "pending")
    )
    if kind is not None:
        query = query.where(models.ReviewItem.kind == kind)
    return session.scalar(query.limit(1))


def require_none_pending(session: Session, org_id: str, customer_id: str, kind: str) -> None:
    """Refuse a new capture of `kind` while one of the customer's is held for review."""
    if pending_kind(session, org_id, customer_id, kind) is not None:
        raise review_pending(kind)


def none_pending(store: Store, org_id: str, customer_id: str, kind: str) -> Precheck:
    """A capture flow's precheck: `require_none_pending`, read before any model work."""

    async def check(_resume: bool) -> None:
        await store.read(lambda s: require_none_pending(s, org_id, customer_id, kind))

    return check


def review_pending(kind: str) -> FailedPrecondition:
    return FailedPrecondition(
        "an earlier capture of this customer is waiting for an analyst's review",
        "REVIEW_PENDING",
        {"kind": kind},
    )


def verdict_outcome(session: Session, row: models.Verification) -> str:
    """A cited verification's outcome once reviewed: a held one takes its item's verdict."""
    if row.outcome != "needs_review":
        return row.outcome
    item = session.scalar(
        select(models.ReviewItem).where(models.ReviewItem.verification_id == row.verification_id)
    )
    if item is None:
        return row.outcome
    if item.status == "pending":
        raise review_pending(row.kind)
    if item.status != "approved":
        raise tiers.prerequisite_missing(
            f"that {row.kind} verification was {item.status} on review",
            row.kind,
            review_id=item.review_id,
        )
    return "passed"


def _pending(session: Session, org_id: str, review_id: str) -> models.ReviewItem:
    row = session.get(models.ReviewItem, review_id, with_for_update=True)
    if row is None or row.org_id != org_id:
        raise NotFound("no such review item in this organisation", "REVIEW_NOT_FOUND")
    if row.status == withdrawals.WITHDRAWN:
        raise withdrawals.customer_erased()
    if row.status != "pending":
        raise FailedPrecondition(
            f"the review item was already {row.status}", "REVIEW_ALREADY_DECIDED"
        )
    if records.load_customer(session, org_id, row.customer_id).status != "active":
        raise withdrawals.customer_erased()  # withdrawn by the erasure's next step
    return row


def _held(row: models.ReviewItem) -> tuple[ReviewView, str]:
    """The item, and the reference matching holds for it ("" when none)."""
    return review_view(row), str((row.details or {}).get("enrollment_id", ""))


@dataclass
class ReviewFlow:
    store: Store
    matcher: Matcher

    async def decide(self, org_id: str, review_id: str, decision: str, note: str) -> ReviewDecided:
        if not review_id:
            raise invalid_field("review_id", "is required")
        if decision not in DECISIONS:
            raise invalid_field("decision", "is required: REVIEW_DECISION_APPROVE or _REJECT")
        if len(note) > MAX_NOTE_LENGTH:
            raise invalid_field("note", f"must be at most {MAX_NOTE_LENGTH} characters")
        item, held = await self.store.read(lambda s: _held(_pending(s, org_id, review_id)))
        if held:
            if decision == "approve":
                await self.matcher.activate(item.customer_id, held)
            else:
                await self.matcher.retire(item.customer_id, "review", held)

        def record(session: Session) -> ReviewDecided:
            row = _pending(session, org_id, review_id)
            row.status = DECISIONS[decision]
            row.decided_by = context.actor() or "analyst"
            row.note = note or None
            row.decided_at = utcnow()
            outbox.record(
                session,
                org_id,
                "review.decide",
                f"customer:{row.customer_id}",
                "success",
                details={
                    "review_id": review_id,
                    "decision": row.status,
                    "enrollment_id": held,
                },
            )
            customer = records.load_customer(session, org_id, row.customer_id, for_update=True)
            reviewed = session.get(models.Verification, row.verification_id)
            verdict = records.add_verification(
                session,
                customer,
                row.kind,
                decision == "approve",
                details={
                    **((reviewed.details or {}) if reviewed is not None else {}),
                    "review_id": review_id,
                    "reviewed_verification_id": row.verification_id,
                },
            )
            customers.settle(
                session, customer, "review_decision", verification_id=verdict.verification_id
            )
            webhook_events.emit(
                session,
                org_id,
                "review.decided",
                {
                    "review_id": review_id,
                    "customer_id": row.customer_id,
                    "decision": row.status,
                    "verification_id": verdict.verification_id,
                },
            )
            return ReviewDecided(review_view(row), customer.tier)

        return await self.store.write(record)
