"""Breach response on matching's own tables: revoke every face template of an
organisation (or of the whole platform).

In bounded batches, one short transaction each (under the organisation's
gallery lock, so running replicas drop the vectors at the change number it
records): the live enrollments are retired (reason "breach") and their
sealed templates cleared, and the customers' template keys are destroyed
(crypto-shredding). A destroyed key is filed under REVOKED_PURPOSE, so the
customer can enroll again under a new key (unlike an erasure's tombstone,
which refuses anything new). Idempotent: a second run finds nothing live.
Counts only; the customer ids go back to the caller (kyc-tier flags them for
re-enrollment), never into a log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from identity_store.db import Database
from identity_store.types import utcnow
from services.matching import models
from services.matching.enrollments import TEMPLATE_PURPOSE, lock_gallery

BREACH_REASON = "breach"
REVOKED_PURPOSE = "template_revoked"


@dataclass
class Revoked:
    enrollments: int = 0
    keys_destroyed: int = 0
    customers: set[str] = field(default_factory=set)


def _live(org_id: str | None) -> Select:
    query = select(models.Enrollment).where(models.Enrollment.retired_at.is_(None))
    return query if org_id is None else query.where(models.Enrollment.org_id == org_id)


def affected(session: Session, org_id: str | None) -> dict[str, dict[str, int]]:
    """Per organisation: customers holding a live template, and the templates."""
    enrollment = models.Enrollment
    query = (
        select(
            enrollment.org_id,
            func.count(func.distinct(enrollment.customer_id)),
            func.count(),
        )
        .where(enrollment.retired_at.is_(None))
        .group_by(enrollment.org_id)
        .order_by(enrollment.org_id)
    )
    if org_id is not None:
        query = query.where(enrollment.org_id == org_id)
    return {
        org: {"customers_with_templates": customers, "templates": templates}
        for org, customers, templates in session.execute(query)
    }


def revoke_templates(
    database: Database, org_id: str | None, batch: int = 1000
) -> dict[str, Revoked]:
    """Retire and shred every live template of `org_id` (None: every organisation)."""
    with database.transaction() as session:
        orgs = list(affected(session, org_id))
    return {org: _revoke_org(database, org, batch) for org in orgs}


def _revoke_org(database: Database, org_id: str, batch: int) -> Revoked:
    done = Revoked()
    while True:
        with database.transaction() as session:
            head = lock_gallery(session, org_id)
            rows = list(
                session.scalars(
                    _live(org_id).order_by(models.Enrollment.enrollment_id).limit(batch)
                )
            )
            if not rows:
                return done
            head.last_seq += 1
            head.updated_at = now = utcnow()
            for row in rows:
                row.active = False
                row.retired_at = now
                row.retire_reason = BREACH_REASON
                row.sealed_template = None
                row.gallery_seq = head.last_seq
            customers = {row.customer_id for row in rows}
            done.keys_destroyed += _destroy_keys(session, org_id, customers, now)
            done.enrollments += len(rows)
            done.customers |= customers


def _destroy_keys(session: Session, org_id: str, customers: set[str], now: datetime) -> int:
    keys = session.scalars(
        select(models.DataKey).where(
            models.DataKey.org_id == org_id,
            models.DataKey.customer_id.in_(sorted(customers)),
            models.DataKey.purpose == TEMPLATE_PURPOSE,
            models.DataKey.destroyed_at.is_(None),
        )
    ).all()
    for key in keys:
        key.wrapped_key = None
        key.destroyed_at = now
        key.purpose = REVOKED_PURPOSE
    return len(keys)
