"""Breach response on kyc-tier's own tables (UU PDP art. 46: notify within
72 hours): what an incident exposes per organisation, counts only, and the
re-enrollment flag on customers whose face templates were revoked. Every
step queues one audit entry per organisation (counts and the incident
reference only) in kyc-tier's outbox."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from identity_runtime.errors import invalid_field
from identity_runtime.reason_codes import check_reason
from identity_store.db import Database
from services.kyc_tier import models, outbox

_CHUNK = 500


def require_incident(incident: str) -> str:
    """An incident reference: a case code (`check_reason`: it is chained into
    the audit log), never personal data."""
    if not incident:
        raise invalid_field("incident", "is required: the incident's case code")
    check_reason(incident, "incident")
    return incident


def _per_org(session: Session, query: Select, org: Any, org_id: str | None) -> dict[str, int]:
    if org_id is not None:
        query = query.where(org == org_id)
    return {found: n for found, n in session.execute(query.group_by(org))}


def exposure(session: Session, org_id: str | None) -> dict[str, dict[str, int]]:
    """Per organisation: customers (not erased), those with a sealed NIK, and
    sealed captures held. Counts only."""
    customer, bundle = models.Customer, models.CaptureBundle
    customers = select(customer.org_id, func.count()).where(customer.status != "erased")
    counts = {
        "customers": _per_org(session, customers, customer.org_id, org_id),
        "customers_with_nik": _per_org(
            session, customers.where(customer.nik_sealed.is_not(None)), customer.org_id, org_id
        ),
        "sealed_captures": _per_org(
            session, select(bundle.org_id, func.count()), bundle.org_id, org_id
        ),
    }
    orgs = sorted(set().union(*counts.values()))
    return {org: {name: found.get(org, 0) for name, found in counts.items()} for org in orgs}


def record(session: Session, org_id: str, action: str, details: dict[str, object]) -> None:
    outbox.record(session, org_id, action, f"org:{org_id}", "success", details=details)


def _chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def flag_for_reenrollment(
    database: Database,
    org_id: str,
    customer_ids: set[str],
    now: datetime,
    details: dict[str, object],
) -> int:
    """Mark the organisation's customers whose templates were revoked as
    needing a new enrollment (bounded batches); one audit entry at the end."""
    flagged = 0
    for chunk in _chunks(customer_ids):
        with database.transaction() as session:
            result = session.execute(
                update(models.Customer)
                .where(models.Customer.org_id == org_id, models.Customer.customer_id.in_(chunk))
                .values(reenrollment_required_at=now)
            )
            flagged += int(getattr(result, "rowcount", 0) or 0)
    with database.transaction() as session:
        record(session, org_id, "breach.templates_revoked", {**details, "flagged": flagged})
    return flagged


def affected_customers(session: Session, org_id: str | None) -> Iterator[tuple[str, str, str]]:
    """(org, customer id, partner's external id) of every customer not erased:
    what a partner needs to notify them. Only for an operator's file."""
    customer = models.Customer
    query = (
        select(customer.org_id, customer.customer_id, customer.external_id)
        .where(customer.status != "erased")
        .order_by(customer.org_id, customer.customer_id)
    )
    if org_id is not None:
        query = query.where(customer.org_id == org_id)
    for row in session.execute(query):
        yield row.org_id, row.customer_id, row.external_id
