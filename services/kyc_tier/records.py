"""Verifications, attempts and tier events: the immutable history.

A verification row is written once and never updated. Every attempt,
including refused ones, is an attempt row. `settle_tier` recomputes the
customer's tier from the history inside the same transaction and records a
tier event when it changes, so the tier and its history can never disagree.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from identity_runtime import context
from identity_runtime.convert import same_named
from identity_runtime.errors import FailedPrecondition, NotFound, invalid_field
from identity_store.types import utcnow
from services.kyc_tier import models, tiers, webhook_events
from services.kyc_tier.org_rows import owned
from services.kyc_tier.ports import Reason
from services.kyc_tier.reason_rows import to_stored, with_stored_reasons

# Capture bundles dedupe on their nonce for this long.
NONCE_WINDOW = timedelta(hours=24)


def new_id(kind: str) -> str:
    return f"{kind}_{uuid.uuid4().hex}"


@dataclass(frozen=True)
class VerificationRecord:
    verification_id: str
    customer_id: str
    kind: str
    outcome: str
    reasons: tuple[Reason, ...]
    scores: Mapping[str, float]
    models: Mapping[str, str]
    input_hashes: Mapping[str, str]
    created_at: datetime
    request_id: str
    details: Mapping[str, Any] = field(default_factory=dict)
    bundle_sha256: str | None = None


@dataclass(frozen=True)
class TierChange:
    event_id: str
    customer_id: str
    from_tier: str
    to_tier: str
    cause: str
    verification_id: str | None
    actor: str
    created_at: datetime


def verification_record(row: models.Verification) -> VerificationRecord:
    return with_stored_reasons(
        VerificationRecord,
        row,
        scores=dict(row.scores),
        models=dict(row.models),
        input_hashes=dict(row.input_hashes),
        details=dict(row.details or {}),
    )


def tier_change(row: models.TierEvent) -> TierChange:
    return same_named(TierChange, row)


def load_customer(
    session: Session, org_id: str, customer_id: str, *, for_update: bool = False
) -> models.Customer:
    """The organisation's customer; another organisation's id is NOT_FOUND."""
    if not customer_id:
        raise invalid_field("customer_id", "is required")
    customer = owned(
        session, models.Customer, "customer_id", customer_id, org_id, for_update=for_update
    )
    if customer is None:
        raise NotFound("no such customer in this organisation", "CUSTOMER_NOT_FOUND")
    return customer


def require_active(customer: models.Customer) -> None:
    """Erased customers, and customers whose erasure was requested, are refused."""
    if customer.status != "active":
        raise FailedPrecondition("the customer was erased", "CUSTOMER_ERASED")


def outcome_of(passed: bool | None) -> str:
    """A verification's outcome (and its attempt's): None means an analyst decides."""
    return "needs_review" if passed is None else ("passed" if passed else "failed")


def add_verification(
    session: Session,
    customer: models.Customer,
    kind: str,
    passed: bool | None,
    reasons: Sequence[Reason] = (),
    scores: Mapping[str, float] | None = None,
    model_ids: Mapping[str, str] | None = None,
    input_hashes: Mapping[str, str] | None = None,
    details: Mapping[str, Any] | None = None,
    nonce: str | None = None,
    bundle_sha256: str | None = None,
    verification_id: str | None = None,
    review_details: Mapping[str, Any] | None = None,
    attempt_id: str | None = None,
) -> models.Verification:
    """Record one check. `passed=None` means it needs an analyst's review.
    `verification_id` may be chosen beforehand (when a downstream record,
    such as an enrollment, must cite it). A review item (with
    `review_details`) is written after its verification row is flushed: it
    references it."""
    outcome = outcome_of(passed)
    row = models.Verification(
        verification_id=verification_id or new_id("ver"),
        org_id=customer.org_id,
        customer_id=customer.customer_id,
        kind=kind,
        outcome=outcome,
        reasons=to_stored(reasons),
        scores={k: float(v) for k, v in (scores or {}).items()},
        models=dict(model_ids or {}),
        input_hashes=dict(input_hashes or {}),
        details=dict(details or {}),
        nonce=nonce,
        bundle_sha256=bundle_sha256,
        request_id=context.request_id(),
    )
    session.add(row)
    if attempt_id:  # the attempt was recorded as started: it is finished here
        finish_attempt(session, attempt_id, outcome, reasons, row.verification_id)
    else:
        add_attempt(
            session,
            customer.org_id,
            customer.customer_id,
            kind,
            outcome,
            reasons,
            row.verification_id,
        )
    if passed is None:
        # The review item cites the verification: the row must exist first
        # (the unit of work does not order unrelated mappers by foreign key).
        session.flush()
        session.add(
            models.ReviewItem(
                review_id=new_id("rev"),
                org_id=customer.org_id,
                customer_id=customer.customer_id,
                verification_id=row.verification_id,
                kind=kind,
                reasons=to_stored(reasons),
                details=dict(review_details or {}),
            )
        )
    session.flush()
    return row


def add_attempt(
    session: Session,
    org_id: str,
    customer_id: str,
    kind: str,
    outcome: str,
    reasons: Sequence[Reason] = (),
    verification_id: str | None = None,
) -> None:
    session.add(
        models.Attempt(
            attempt_id=new_id("att"),
            org_id=org_id,
            customer_id=customer_id,
            kind=kind,
            outcome=outcome,
            reasons=to_stored(reasons),
            verification_id=verification_id,
            request_id=context.request_id(),
        )
    )


def start_attempt(
    session: Session,
    org_id: str,
    customer_id: str,
    kind: str,
    attempt_id: str = "",
    key: tuple[str, str] | None = None,
) -> str:
    """An attempt recorded before any service is called (outcome "started"),
    so that a challenge or nonce consumed downstream never lacks one; `key`:
    the request's nonce and digest (flows/replays.py)."""
    attempt_id = attempt_id or new_id("att")
    nonce, digest = key or (None, None)
    session.add(
        models.Attempt(
            attempt_id=attempt_id,
            org_id=org_id,
            customer_id=customer_id,
            kind=kind,
            outcome="started",
            reasons=[],
            request_id=context.request_id(),
            nonce=nonce,
            bundle_sha256=digest,
        )
    )
    return attempt_id


def finish_attempt(
    session: Session,
    attempt_id: str,
    outcome: str,
    reasons: Sequence[Reason] = (),
    verification_id: str | None = None,
) -> None:
    """The attempt (if it was written) finished, in one UPDATE (nothing read)."""
    session.execute(
        update(models.Attempt)
        .where(models.Attempt.attempt_id == attempt_id)
        .values(outcome=outcome, reasons=to_stored(reasons), verification_id=verification_id)
    )


def evidence(session: Session, customer: models.Customer) -> list[tiers.Evidence]:
    rows = session.scalars(
        select(models.Verification)
        .where(
            models.Verification.org_id == customer.org_id,
            models.Verification.customer_id == customer.customer_id,
        )
        .order_by(models.Verification.created_at)
    )
    return [
        tiers.Evidence(
            verification_id=row.verification_id,
            kind=row.kind,
            passed=row.outcome == "passed",
            against_enrolled_live=bool((row.details or {}).get("against_enrolled_live")),
            granted_tier=str((row.details or {}).get("granted_tier", "")),
        )
        for row in rows
    ]


def settle_tier(
    session: Session, customer: models.Customer, cause: str, verification_id: str | None = None
) -> TierChange | None:
    """Recompute the tier from history; record a tier event when it changed."""
    status = tiers.compute(evidence(session, customer), erased=customer.status == "erased")
    if status.tier == customer.tier:
        return None
    now = utcnow()
    row = models.TierEvent(
        event_id=new_id("tev"),
        org_id=customer.org_id,
        customer_id=customer.customer_id,
        from_tier=customer.tier,
        to_tier=status.tier,
        cause=cause,
        verification_id=verification_id,
        actor=context.actor() or "service:kyc-tier",
        created_at=now,
    )
    customer.tier = status.tier
    customer.tier_updated_at = now
    session.add(row)
    session.flush()
    webhook_events.announce_tier_change(session, row)
    return tier_change(row)


def verification_by_nonce(session: Session, org_id: str, nonce: str) -> models.Verification | None:
    return session.scalar(
        select(models.Verification).where(
            models.Verification.org_id == org_id, models.Verification.nonce == nonce
        )
    )


def within_nonce_window(row: VerificationRecord, now: datetime | None = None) -> bool:
    return (now or utcnow()) - row.created_at <= NONCE_WINDOW
