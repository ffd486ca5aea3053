"""Legal holds on the audit log, read from the chain itself (audit reads no
other service's tables):

- kyc-tier's `customer.legal_hold` entries (details hold=True/False) hold the
  entries about that customer (the same tenant and subject);
- an operator's `audit.legal_hold` entry on subject `tenant:<id>` (`identity
  audit hold`) holds every entry of that tenant.

The latest entry of each decides. The retention purge removes only a prefix
of the chain, so it stops just before the oldest held entry it would reach.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from identity_runtime.reason_codes import check_reason
from services.audit import models

CUSTOMER_HOLD = "customer.legal_hold"
TENANT_HOLD = "audit.legal_hold"
_CHUNK = 200


def _held(details: object) -> bool:
    return isinstance(details, dict) and str(details.get("hold")).lower() == "true"


def current_holds(session: Session) -> tuple[set[tuple[str, str]], set[str]]:
    """((tenant, subject) held, tenants held) as the chain says now."""
    entry = models.AuditEntry
    rows = session.execute(
        select(entry.tenant_id, entry.subject, entry.action, entry.details)
        .where(entry.action.in_((CUSTOMER_HOLD, TENANT_HOLD)))
        .order_by(entry.sequence)
    )
    state: dict[tuple[str, str, str], bool] = {}
    for tenant, subject, action, details in rows:
        state[(action, tenant, subject)] = _held(details)
    subjects = {(t, s) for (a, t, s), on in state.items() if on and a == CUSTOMER_HOLD}
    tenants = {
        s.removeprefix("tenant:") for (a, _, s), on in state.items() if on and a == TENANT_HOLD
    }
    return subjects, tenants


def first_held(session: Session, before: datetime) -> int | None:
    """The oldest sequence recorded before `before` that a hold keeps."""
    subjects, tenants = current_holds(session)
    entry = models.AuditEntry
    conditions: list[ColumnElement[bool]] = (
        [entry.tenant_id.in_(sorted(tenants))] if tenants else []
    )
    ordered = sorted(subjects)
    while ordered:
        chunk, ordered = ordered[:_CHUNK], ordered[_CHUNK:]
        conditions.append(or_(*(and_(entry.tenant_id == t, entry.subject == s) for t, s in chunk)))
    found = [
        session.scalar(select(func.min(entry.sequence)).where(entry.recorded_at < before, c))
        for c in conditions
    ]
    kept = [s for s in found if s is not None]
    return min(kept) if kept else None


def hold_entry_details(hold: bool, reason: str) -> dict[str, str]:
    """The details of an `audit.legal_hold` entry; the reason is a case code
    (`check_reason`): the entry is part of the chain, which is never erased."""
    check_reason(reason)
    return {"hold": str(hold), "reason": reason}


__all__ = ["CUSTOMER_HOLD", "TENANT_HOLD", "current_holds", "first_held", "hold_entry_details"]
