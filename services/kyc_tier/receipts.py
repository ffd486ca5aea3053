"""The erasure receipt: what an erasure destroyed so far, and what is
retained and until when (the seed's retention table: verification rows and
the audit log are regulated records kept 7 years; embeddings are retired on
erasure but their rows stay for the same window)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.kyc_tier import models, records
from services.kyc_tier.erasures import (
    DESTROYS,
    RETIRE,
    STEPS,
    keys_destroyed,
    results,
    retired,
)

# Regulated records (verification rows, audit log): 7 years.
REGULATED_YEARS = 7
AUDIT_KEPT = (
    "every entry kept, none removed by erasure (ids and codes only, evidence hashes "
    "redacted); not counted here"
)


@dataclass(frozen=True)
class Retained:
    record: str
    basis: str
    # None: not counted here (the audit log is the audit service's chain).
    count: int | None
    retained_until: datetime

    @property
    def counted(self) -> bool:
        return self.count is not None


@dataclass(frozen=True)
class ErasureResult:
    """The erasure receipt."""

    customer_id: str
    erased_at: datetime | None
    enrollments_retired: int
    # Template keys shredded by matching plus the customer's keys here.
    keys_destroyed: int
    erasure_id: str = ""
    state: str = "completed"  # or "in_progress"
    requested_at: datetime | None = None
    destroyed: tuple[str, ...] = ()
    retained: tuple[Retained, ...] = ()


def years_after(when: datetime, years: int) -> datetime:
    try:
        return when.replace(year=when.year + years)
    except ValueError:  # 29 February
        return when.replace(year=when.year + years, day=28)


def receipt(session: Session, org_id: str, customer_id: str) -> ErasureResult:
    """What was destroyed so far, what is retained and until when."""
    customer = records.load_customer(session, org_id, customer_id)
    erasure = session.scalar(
        select(models.Erasure).where(models.Erasure.customer_id == customer_id)
    )
    if erasure is None:  # erased before erasures were recorded
        return ErasureResult(customer_id, customer.erased_at, 0, 0)
    found = results(session, erasure.erasure_id)
    destroyed = tuple(item for step in STEPS if step in found for item in DESTROYS[step])
    verifications, newest = session.execute(
        select(func.count(), func.max(models.Verification.created_at)).where(
            models.Verification.org_id == org_id,
            models.Verification.customer_id == customer_id,
        )
    ).one()
    since = customer.erased_at or erasure.requested_at
    until = years_after(since, REGULATED_YEARS)
    basis = f"regulated record, {REGULATED_YEARS} years"
    retained = (
        Retained(
            "verifications",
            basis,
            int(verifications or 0),
            years_after(newest or since, REGULATED_YEARS),
        ),
        # Counted once matching has retired them (not before: an erasure a
        # matching outage holds up does not know how many there are yet).
        Retained(
            "face_enrollment_rows",
            f"retired, template unreadable; {basis}",
            retired(found) if RETIRE in found else None,
            until,
        ),
        # Every entry about the customer is kept (ids and codes; the chain
        # redacts their evidence hashes on erasure). kyc-tier cannot count
        # them: its outbox drops relayed rows after a day, the chain is audit's.
        Retained("audit_log", f"{AUDIT_KEPT}; {basis}", None, until),
    )
    return ErasureResult(
        customer_id=customer_id,
        erased_at=customer.erased_at,
        enrollments_retired=retired(found),
        keys_destroyed=keys_destroyed(found),
        erasure_id=erasure.erasure_id,
        state="completed" if erasure.state == "completed" else "in_progress",
        requested_at=erasure.requested_at,
        destroyed=destroyed,
        retained=retained,
    )
