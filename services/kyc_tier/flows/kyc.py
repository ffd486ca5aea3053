"""A customer's KYC standing: the tier, what it rests on, the way up, and the
history of attempts behind it.

    GET  /api/identity/kyc/{id}              the tier and its requirements
    POST /api/identity/kyc/{id}/upgrade      the history must reach the target,
                                             or an approved review is cited
    GET  /api/identity/attempts, /api/identity/customers/{id}/attempts

A tier is never set by hand: an upgrade either confirms what the history
already earns (settling it) or records the analyst's approved review as a
MANUAL_REVIEW verification that grants the tier. A review grants only within
its scope (`tiers.REVIEW_SCOPES`, from the kind of verification it held, never
from the request): at most the tier its step leads to, every other
requirement of that tier met; and it is cited once. A refusal of the upgrade
itself (what the history or the review allows) leaves a denied `kyc.upgrade`
audit entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity_runtime import context
from identity_runtime.errors import (
    AlreadyExists,
    DomainError,
    NotFound,
    PermissionDenied,
    invalid_field,
)
from services.kyc_tier import attempts, customers, models, outbox, records, tiers
from services.kyc_tier.paging import Page
from services.kyc_tier.store import Store

# Refusals of the upgrade asked for (not of the request's shape or access)
# that leave a denied audit entry.
AUDITED_REFUSALS = frozenset(
    {
        "TIER_PREREQUISITE_MISSING",
        "REVIEW_NOT_FOUND",
        "REVIEW_SCOPE_EXCEEDED",
        "REVIEW_ALREADY_CITED",
    }
)


@dataclass(frozen=True)
class KycStatus:
    status: tiers.TierStatus
    tier_updated_at: datetime | None


@dataclass(frozen=True)
class UpgradeRequest:
    target_tier: str
    # An approved review item that grants the tier (internal scope only).
    review_id: str = ""
    note: str = ""


@dataclass(frozen=True)
class UpgradeResult:
    tier: str
    # The tier event, when the upgrade changed the tier.
    change: records.TierChange | None


@dataclass
class KycFlow:
    store: Store

    async def status(self, org_id: str, customer_id: str) -> KycStatus:
        def read(session: Session) -> KycStatus:
            customer = records.load_customer(session, org_id, customer_id)
            status = tiers.compute(
                records.evidence(session, customer), erased=customer.status == "erased"
            )
            return KycStatus(status, customer.tier_updated_at)

        return await self.store.read(read)

    async def upgrade(
        self, org_id: str, customer_id: str, request: UpgradeRequest
    ) -> UpgradeResult:
        target = request.target_tier
        if target not in tiers.TIERS or target == "none":
            raise invalid_field("target_tier", "must be basic, standard or premium")
        caller = context.current()
        if request.review_id and "internal" not in (caller.scopes if caller else ()):
            raise PermissionDenied(
                "citing a review decision needs an internal-scope key", "SCOPE_INSUFFICIENT"
            )

        def work(session: Session) -> UpgradeResult:
            customer = records.load_customer(session, org_id, customer_id, for_update=True)
            records.require_active(customer)
            if request.review_id:
                change = _grant_reviewed_tier(session, customer, request)
            else:
                change = _confirm_earned_tier(session, customer, target)
            _audit(session, org_id, customer_id, "success", request, tier=customer.tier)
            return UpgradeResult(customer.tier, change)

        try:
            return await self.store.write(work)
        except DomainError as refused:
            denied = refused.reason
            if denied in AUDITED_REFUSALS:
                await self.store.write(
                    lambda s: _audit(s, org_id, customer_id, "denied", request, reason=denied)
                )
            raise

    async def list_attempts(
        self, org_id: str, filters: attempts.AttemptFilter, page_size: int, page_token: str
    ) -> Page[attempts.AttemptView]:
        return await self.store.read(
            lambda s: attempts.list_attempts(s, org_id, filters, page_size, page_token)
        )

    async def list_customer_attempts(
        self, org_id: str, customer_id: str, page_size: int, page_token: str
    ) -> Page[attempts.AttemptView]:
        if not customer_id:
            raise invalid_field("customer_id", "is required")
        return await self.list_attempts(
            org_id, attempts.AttemptFilter(customer_id=customer_id), page_size, page_token
        )


def _audit(
    session: Session,
    org_id: str,
    customer_id: str,
    outcome: str,
    request: UpgradeRequest,
    **details: str,
) -> None:
    outbox.record(
        session,
        org_id,
        "kyc.upgrade",
        f"customer:{customer_id}",
        outcome,
        details={"target_tier": request.target_tier, "review_id": request.review_id, **details},
    )


def _confirm_earned_tier(
    session: Session, customer: models.Customer, target: str
) -> records.TierChange | None:
    """The history must earn the target; the tier is settled from it."""
    status = tiers.compute(records.evidence(session, customer))
    if tiers.RANK[status.tier] < tiers.RANK[target]:
        missing = tiers.missing_for(target, status.requirements)
        raise tiers.prerequisite_missing(
            f"the verification history does not reach {target}",
            ",".join(missing),
            tier=status.tier,
        )
    return customers.settle(session, customer, "recompute")


def _grant_reviewed_tier(
    session: Session, customer: models.Customer, request: UpgradeRequest
) -> records.TierChange | None:
    """An approved review grants the tier, within its scope and once: a
    MANUAL_REVIEW verification citing it."""
    review = session.get(models.ReviewItem, request.review_id)
    wanted = (customer.org_id, customer.customer_id)
    if review is None or (review.org_id, review.customer_id) != wanted:
        raise NotFound("no such review item for this customer", "REVIEW_NOT_FOUND")
    if review.status != "approved":
        raise tiers.prerequisite_missing("the review item is not approved", "approved_review")
    cited = _citing_verification(session, customer, review.review_id)
    if cited:
        raise AlreadyExists(
            "the review item was already cited by an upgrade",
            "REVIEW_ALREADY_CITED",
            {"verification_id": cited},
        )
    scope = tiers.REVIEW_SCOPES.get(review.kind, tiers.NO_REVIEW_SCOPE)
    status = tiers.compute(records.evidence(session, customer))
    missing = tiers.missing_beside_review(request.target_tier, status.requirements, scope)
    if missing:
        raise tiers.prerequisite_missing(
            f"beside the reviewed {review.kind}, the history does not reach {request.target_tier}",
            ",".join(missing),
            tier=status.tier,
        )
    row = records.add_verification(
        session,
        customer,
        tiers.MANUAL_REVIEW,
        True,
        details={
            "granted_tier": request.target_tier,
            "review_id": request.review_id,
            "review_kind": review.kind,
            "note_present": bool(request.note),
        },
    )
    return customers.settle(
        session, customer, "review_decision", verification_id=row.verification_id
    )


def _citing_verification(session: Session, customer: models.Customer, review_id: str) -> str:
    """The MANUAL_REVIEW verification that already cites the review ("" for none).
    The customer's row is locked, so two upgrades citing it are serialised."""
    rows = session.scalars(
        select(models.Verification).where(
            models.Verification.org_id == customer.org_id,
            models.Verification.customer_id == customer.customer_id,
            models.Verification.kind == tiers.MANUAL_REVIEW,
        )
    )
    for row in rows:
        if (row.details or {}).get("review_id") == review_id:
            return row.verification_id
    return ""
