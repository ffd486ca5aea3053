"""Per-organisation retention overrides: an organisation may keep one of
kyc-tier's data classes LONGER than the declared period when a regulation
or an order requires it, never shorter (the declared period is the regulated
minimum). Set by an operator (`identity retention override`), audited in
kyc-tier's outbox, read by the sweeper and by the reads that refuse data
past its period."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity_runtime.errors import NotFound, invalid_field
from identity_store.retention import RETENTION, period
from services.kyc_tier import models, outbox

# The classes kyc-tier sweeps by age (erased frames go at once: erasure is not
# a period to lengthen; other services' classes are theirs to keep).
OVERRIDABLE = ("onboarding_frames", "step_up_frames", "verifications")
# Nothing is kept for longer than a century.
MAX_DAYS = 36_500


def periods(session: Session, org_id: str) -> dict[str, timedelta]:
    """The organisation's period of each overridable class (declared or longer)."""
    found = {name: period(name) for name in OVERRIDABLE}
    rows = session.scalars(
        select(models.RetentionOverride).where(models.RetentionOverride.org_id == org_id)
    )
    for row in rows:
        if row.data_class in found:
            found[row.data_class] = max(found[row.data_class], timedelta(days=row.period_days))
    return found


def declared_days(data_class: str) -> int:
    """The declared period of an overridable class (INVALID_FIELD otherwise)."""
    if data_class not in OVERRIDABLE:
        known = "unknown" if data_class not in RETENTION else "not overridable"
        raise invalid_field(
            "data_class", f"{known}; one of {', '.join(OVERRIDABLE)} may be lengthened"
        )
    return period(data_class).days


def validate(data_class: str, days: int, basis: str) -> None:
    minimum = declared_days(data_class)
    if not minimum < days <= MAX_DAYS:
        raise invalid_field(
            "period_days",
            f"may only lengthen {data_class}: more than its {minimum} days "
            f"(the regulated minimum), at most {MAX_DAYS}",
        )
    if not basis.strip() or len(basis) > 200:
        raise invalid_field("basis", "name the regulation or order (1 to 200 characters)")


def set_override(
    session: Session, org_id: str, data_class: str, days: int, basis: str, actor: str
) -> models.RetentionOverride:
    """Lengthen `data_class` for `org_id` (replacing an earlier override), audited."""
    validate(data_class, days, basis)
    if session.get(models.Org, org_id) is None:
        raise NotFound("no such organisation", "ORGANIZATION_NOT_FOUND")
    row = session.get(models.RetentionOverride, (org_id, data_class))
    previous = row.period_days if row is not None else period(data_class).days
    if row is None:
        row = models.RetentionOverride(org_id=org_id, data_class=data_class)
        session.add(row)
    row.period_days, row.basis, row.set_by = days, basis.strip(), actor
    outbox.record(
        session,
        org_id,
        "retention.override_set",
        f"org:{org_id}",
        "success",
        details={"data_class": data_class, "period_days": days, "previous_days": previous},
        actor=actor,
    )
    session.flush()
    return row


def clear_override(session: Session, org_id: str, data_class: str, actor: str) -> bool:
    """Back to the declared period (audited); False when there was none."""
    declared_days(data_class)
    row = session.get(models.RetentionOverride, (org_id, data_class))
    if row is None:
        return False
    session.delete(row)
    outbox.record(
        session,
        org_id,
        "retention.override_cleared",
        f"org:{org_id}",
        "success",
        details={"data_class": data_class, "period_days": period(data_class).days},
        actor=actor,
    )
    return True


def listed(session: Session, org_id: str | None = None) -> list[Mapping[str, object]]:
    query = select(models.RetentionOverride).order_by(
        models.RetentionOverride.org_id, models.RetentionOverride.data_class
    )
    if org_id:
        query = query.where(models.RetentionOverride.org_id == org_id)
    return [
        {
            "org_id": r.org_id,
            "data_class": r.data_class,
            "period_days": r.period_days,
            "declared_days": period(r.data_class).days,
            "basis": r.basis,
            "set_by": r.set_by,
        }
        for r in session.scalars(query)
    ]
