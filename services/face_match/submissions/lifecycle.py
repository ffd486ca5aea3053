"""The lifecycle of a submission, every transition of which is recorded.

    CREATED -> AWAITING_UPLOAD -> QUEUED -> PROCESSING -> COMPLETED | FAILED
    CREATED / AWAITING_UPLOAD -> EXPIRED (not confirmed within the TTL)
    AWAITING_UPLOAD -> AWAITING_UPLOAD (confirm refused an uploaded image)
    any -> ERASED (erased by the partner, or its result purged; the
                   submission's rows go, the transitions once audited)

Domain code: no gRPC.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity_runtime.errors import DomainError
from services.face_match.audit import transition_key
from services.face_match.models import Callback, DataKey, Job, Submission, Transition

CREATED = "CREATED"
AWAITING_UPLOAD = "AWAITING_UPLOAD"
QUEUED = "QUEUED"
PROCESSING = "PROCESSING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
EXPIRED = "EXPIRED"
FINAL = (COMPLETED, FAILED, EXPIRED)
# Not a state a submission is seen in: the transition its erasure records.
ERASED = "ERASED"
# The reason codes of an erasure (the transition's detail).
ERASED_ON_REQUEST = "partner_request"
ERASED_AFTER_RETENTION = "result_retention"
# The service's names; the API spells them REFERENCE_TYPE_<name> (mapping.py).
REFERENCE_TYPES = ("KTP", "PASSPORT", "DRIVING_LICENCE", "KITAS", "CORPORATE_ID", "OTHER")


class Aborted(DomainError, code="ABORTED"):
    """A conflict with the submission's state (HTTP 409)."""


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def record_transition(
    session: Session, row: Submission, to_state: str, actor: str, at: datetime, detail: str = ""
) -> None:
    session.add(
        Transition(
            submission_id=row.submission_id,
            org_id=row.org_id,
            from_state=row.state,
            to_state=to_state,
            actor=actor,
            detail=detail,
            at=at,
            audit_key=transition_key(row.submission_id),
        )
    )
    row.state = to_state
    row.updated_at = at


def due(row: Submission, now: datetime) -> bool:
    """Whether `row` is past its TTL and not confirmed (so must expire)."""
    return row.state in (CREATED, AWAITING_UPLOAD) and now >= row.expires_at


def erase_rows(session: Session, row: Submission, actor: str, reason: str, at: datetime) -> None:
    """Record the erasure (a transition to ERASED: audited as
    face_match.erased, detail the reason code) and delete the submission's
    rows. Its transitions not yet in the audit chain stay (ids and codes, no
    personal data) until the audit relay has appended them and deletes them
    (audit.AuditRelay): an erase never loses an audit entry."""
    from sqlalchemy import delete

    record_transition(session, row, ERASED, actor, at, reason)
    session.flush()
    # Wait for a relay settling some of these rows (its row locks), so that
    # what it marked audited is seen here and deleted (PostgreSQL; SQLite
    # serialises writers anyway).
    session.execute(
        select(Transition.sequence)
        .where(Transition.submission_id == row.submission_id)
        .order_by(Transition.sequence)
        .with_for_update()
    ).all()
    session.execute(
        delete(Transition).where(
            Transition.submission_id == row.submission_id, Transition.audited_at.is_not(None)
        )
    )
    for model in (Job, Callback):
        session.execute(delete(model).where(model.submission_id == row.submission_id))
    # The data key of its sealed images (sealing.py): without it no copy of
    # them opens again.
    session.execute(
        delete(DataKey).where(
            DataKey.org_id == row.org_id, DataKey.customer_id == row.submission_id
        )
    )
    session.delete(row)
