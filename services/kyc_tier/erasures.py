"""Erasures in kyc-tier's database: the request, its steps (the erasure's
outbox), the receipt. Synchronous, run inside one transaction each; the
flow (`flows/erasure.py`) decides the order and makes the mesh calls.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from identity_runtime import context
from identity_runtime.errors import FailedPrecondition, ResourceExhausted
from identity_store.types import utcnow
from services.kyc_tier import (
    bundles,
    customers,
    models,
    outbox,
    records,
    webhook_events,
    withdrawals,
)

# The seed's limit: 10 erasures per 5 minutes per organisation.
LIMIT_REQUESTS = 10
LIMIT_WINDOW = timedelta(minutes=5)

RETIRE = "matching.retire"
SHRED = "matching.shred"
PERSONAL_DATA = "kyc.personal_data"
FORGET_DEVICES = "liveness.forget_devices"
MARK_ERASED = "kyc.mark_erased"
# Personal data first: it needs nothing but kyc-tier's own database, so a
# matching outage cannot leave the name, NIK and frames readable while the
# erasure waits for the worker. (Positions are stored with each erasure: one
# requested under another order keeps it.)
STEPS = (PERSONAL_DATA, RETIRE, SHRED, FORGET_DEVICES, MARK_ERASED)
# What each step destroys (the receipt's `destroyed`, once the step is done).
DESTROYS = {
    RETIRE: ("face_references_retired",),
    SHRED: ("face_template_key",),
    FORGET_DEVICES: ("device_keys",),
    PERSONAL_DATA: ("personal_fields", "nik_key", "capture_bundle_key"),
    MARK_ERASED: (),
}
Results = dict[str, dict[str, int]]
# Refused requests that still leave a denied audit entry.
AUDITED_REFUSALS = frozenset({"LEGAL_HOLD", "RATE_LIMITED"})


def legal_hold_refusal() -> FailedPrecondition:
    return FailedPrecondition(
        "the customer is under a legal hold: erasure is refused until it is lifted",
        "LEGAL_HOLD",
    )


def record_request(
    session: Session,
    org_id: str,
    customer_id: str,
    reason: str,
    now: datetime,
    lease: timedelta,
) -> tuple[str, bool]:
    """The erasure and its steps, the customer turned `erasing`, an audit
    entry: one transaction; (its id, True). A new erasure is leased to the
    request that records it, so no worker starts it meanwhile. An erasure
    already recorded is returned as is: (its id, False)."""
    # The organisation's row serialises its erasure requests (the limit's count).
    session.scalar(select(models.Org).where(models.Org.org_id == org_id).with_for_update())
    customer = records.load_customer(session, org_id, customer_id, for_update=True)
    existing = session.scalar(
        select(models.Erasure).where(models.Erasure.customer_id == customer_id)
    )
    if existing is not None:
        return existing.erasure_id, False
    if customer.legal_hold_since is not None:
        raise legal_hold_refusal()
    recent, oldest = session.execute(
        select(func.count(), func.min(models.Erasure.requested_at)).where(
            models.Erasure.org_id == org_id, models.Erasure.requested_at > now - LIMIT_WINDOW
        )
    ).one()
    if (recent or 0) >= LIMIT_REQUESTS:
        # The gateway's wording of the same limit; retry when the oldest leaves the window.
        retry_after = max(1, math.ceil((oldest + LIMIT_WINDOW - now).total_seconds()))
        limit = f"{LIMIT_REQUESTS} per {int(LIMIT_WINDOW.total_seconds())} seconds per org"
        raise ResourceExhausted(
            f"rate limit of {limit} reached; retry after {retry_after}s",
            "RATE_LIMITED",
            {"limit": limit, "retry_after_seconds": str(retry_after)},
        )
    erasure = models.Erasure(
        erasure_id=records.new_id("era"),
        org_id=org_id,
        customer_id=customer_id,
        reason=reason,
        state="requested",
        request_id=context.request_id(),
        requested_at=now,
        claimed_until=now + lease,
        attempts=1,
    )
    session.add(erasure)
    session.flush()
    for position, step in enumerate(STEPS):
        session.add(
            models.ErasureStep(
                erasure_id=erasure.erasure_id, step=step, position=position, result={}
            )
        )
    if customer.status == "active":
        customer.status = "erasing"
    outbox.record(
        session,
        org_id,
        "customer.erase_requested",
        f"customer:{customer_id}",
        "success",
        details={"erasure_id": erasure.erasure_id, "reason": reason},
    )
    return erasure.erasure_id, True


def _unleased(now: datetime) -> ColumnElement[bool]:
    return or_(models.Erasure.claimed_until.is_(None), models.Erasure.claimed_until < now)


def claim(
    session: Session, erasure_id: str, now: datetime, lease: timedelta
) -> tuple[str, str] | None:
    """Lease an unfinished erasure: (organisation, customer), or None when it
    is complete or another worker holds it."""
    erasure = session.scalar(
        select(models.Erasure)
        .where(
            models.Erasure.erasure_id == erasure_id,
            models.Erasure.state == "requested",
            _unleased(now),
        )
        .with_for_update()
    )
    if erasure is None:
        return None
    erasure.claimed_until = now + lease
    erasure.attempts += 1
    return erasure.org_id, erasure.customer_id


def subject(session: Session, erasure_id: str) -> tuple[str, str]:
    """(organisation, customer) of an erasure."""
    erasure = session.get(models.Erasure, erasure_id)
    assert erasure is not None
    return erasure.org_id, erasure.customer_id


def release(session: Session, erasure_id: str, error: str | None) -> None:
    erasure = session.get(models.Erasure, erasure_id)
    if erasure is not None:
        erasure.claimed_until = None
        erasure.last_error = error[:64] if error else None


def pending(session: Session, now: datetime) -> list[str]:
    """Unfinished erasures no worker holds, oldest first."""
    return list(
        session.scalars(
            select(models.Erasure.erasure_id)
            .where(models.Erasure.state == "requested", _unleased(now))
            .order_by(models.Erasure.requested_at)
            .limit(100)
        )
    )


def pending_steps(session: Session, erasure_id: str) -> list[str]:
    return list(
        session.scalars(
            select(models.ErasureStep.step)
            .where(
                models.ErasureStep.erasure_id == erasure_id,
                models.ErasureStep.done_at.is_(None),
            )
            .order_by(models.ErasureStep.position)
        )
    )


def done(session: Session, erasure_id: str, step: str, result: dict[str, int]) -> None:
    row = session.get(models.ErasureStep, (erasure_id, step))
    assert row is not None
    if row.done_at is None:
        row.done_at = utcnow()
        row.result = result


def results(session: Session, erasure_id: str) -> Results:
    rows = session.scalars(
        select(models.ErasureStep).where(
            models.ErasureStep.erasure_id == erasure_id, models.ErasureStep.done_at.is_not(None)
        )
    )
    return {r.step: dict(r.result or {}) for r in rows}


def retired(found: Results) -> int:
    return int(found.get(RETIRE, {}).get("enrollments_retired", 0))


def keys_destroyed(found: Results) -> int:
    return sum(int(r.get("keys_destroyed", 0)) for r in found.values())


def mark_erased(
    session: Session, erasure_id: str, org_id: str, customer_id: str, now: datetime
) -> None:
    """The last step: status erased, the tier settled (none), the erasure
    completed and audited."""
    customer = records.load_customer(session, org_id, customer_id, for_update=True)
    erasure = session.get(models.Erasure, erasure_id)
    assert erasure is not None
    # An erasure whose personal data step ran before it withdrew review items
    # and dropped the capture digests (an older release, mid-erasure).
    withdrawals.withdraw_pending(session, org_id, customer_id, erasure_id, now)
    bundles.forget_digests(session, org_id, customer_id)
    if customer.status != "erased":
        customer.status = "erased"
        customer.erased_at = now
        customers.settle(session, customer, "erasure")
        webhook_events.emit(
            session,
            org_id,
            "customer.erased",
            {"customer_id": customer_id, "erasure_id": erasure_id},
        )
    erasure.state = "completed"
    erasure.completed_at = now
    found = results(session, erasure_id)
    outbox.record(
        session,
        org_id,
        "customer.erase",
        f"customer:{customer_id}",
        "success",
        details={
            "erasure_id": erasure_id,
            "reason": erasure.reason,
            "enrollments_retired": retired(found),
            "keys_destroyed": keys_destroyed(found),
        },
    )
    done(session, erasure_id, MARK_ERASED, {})
