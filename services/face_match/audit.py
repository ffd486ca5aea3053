"""Every lifecycle transition goes into the platform's audit chain.

A transition row is written in the transaction that changes the state
(submissions.record_transition); it is also the outbox of its audit entry.
`AuditRelay` appends the rows not yet audited to the audit service, oldest
first, as face-match itself (a mesh service: its caller token says "mesh")
for the submission's organisation: action `face_match.<state>` (e.g.
`face_match.completed`), subject `face_match_submission:<id>`, details
`{from, to, detail}`: ids and codes, never an image or a score. Rows that
record a callback given up, redelivered, or a callback secret rotation
(callbacks.py) keep the state and are `face_match.callback_failed`,
`face_match.callback_redelivered` and `face_match.callback_secret_rotated`
(subject `face_match_callback_secret:<org>`). Delivery is
at least once; several processes may relay at once (rows are claimed with
FOR UPDATE SKIP LOCKED for a short lease), and a failed append leaves the row
for the next round. A round's rows go out as one AppendBatch per run of one
organisation's rows (identity_runtime.audit_delivery, as kyc-tier's outbox
relay does), each with the entry key `face-match:outbox:<sequence>`, so a
redelivery after a lost answer is not chained twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from identity_runtime import context
from identity_runtime.audit_delivery import GrpcAuditSink, PendingEntry, deliver_batched
from identity_runtime.clients import ClientFactory
from identity_runtime.logs import get_logger
from identity_store.db import Database
from services.face_match.callbacks import (
    CALLBACK_FAILED,
    CALLBACK_RECORD,
    CALLBACK_REDELIVERED,
    SECRET_ROTATED,
)
from services.face_match.models import Transition
from services.face_match.uploads import UPLOAD_REFUSED

log = get_logger("face_match.audit")
# Actors the audit chain accepts as they are; workers and the expiry sweep
# act as the service.
_ACTOR = re.compile(r"(api_key|oauth_client|console_user|service):[A-Za-z0-9_.\-]{1,100}")
# Refusals a retry cannot fix: the entry is logged and skipped, not retried for ever.
_PERMANENT = frozenset({"INVALID_ARGUMENT", "FAILED_PRECONDITION"})
BATCH = 100
CLAIM = timedelta(seconds=30)


class AuditRelay:
    def __init__(self, database: Database, clients: ClientFactory, clock: Callable[[], datetime]):
        self.database = database
        self.sink = GrpcAuditSink(
            clients, service_actor="service:face-match", key_prefix="face-match:outbox"
        )
        self.clock = clock

    def _claim(self, session: Session) -> list[PendingEntry]:
        now = self.clock()
        rows = list(
            session.scalars(
                select(Transition)
                .where(
                    Transition.audited_at.is_(None),
                    or_(
                        Transition.audit_claimed_until.is_(None),
                        Transition.audit_claimed_until < now,
                    ),
                )
                .order_by(Transition.sequence)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        )
        for row in rows:
            row.audit_claimed_until = now + CLAIM
        return [_entry(row) for row in rows]

    async def flush(self) -> int:
        """Append what is pending; how many entries were settled (appended,
        or refused for good: those are logged and skipped)."""
        batch = await self.database.run(self._claim)
        if not batch:
            return 0
        done, refused, _ = await deliver_batched(self.sink, batch, permanent=_PERMANENT)
        # The first entry that may go through later, and those after it, stay
        # claimed until their lease ends; the next round retries them in order.
        settled = done + list(refused)
        if settled:
            now = self.clock()
            await self.database.run(
                lambda s: s.execute(
                    update(Transition)
                    .where(Transition.sequence.in_(settled))
                    .values(audited_at=now)
                )
            )
        return len(settled)


def _entry(row: Transition) -> PendingEntry:
    """The audit entry a transition row stands for (ids and codes only). An
    upload confirm refused (the state unchanged, uploads.UPLOAD_REFUSED) is
    face_match.upload_refused, outcome denied."""
    refused = row.from_state == row.to_state and row.detail.startswith(UPLOAD_REFUSED)
    outcome = "failed" if row.to_state == "FAILED" else "success"
    action = "face_match.upload_refused" if refused else f"face_match.{row.to_state.lower()}"
    subject = f"face_match_submission:{row.submission_id}"
    if row.from_state == row.to_state and row.detail.startswith(CALLBACK_RECORD):
        # Audit-only records of callbacks (callbacks.py): the state is unchanged.
        if row.detail.startswith(CALLBACK_FAILED):
            action, outcome = "face_match.callback_failed", "failed"
        elif row.detail.startswith(CALLBACK_REDELIVERED):
            action, outcome = "face_match.callback_redelivered", "success"
        elif row.detail.startswith(SECRET_ROTATED):
            action, outcome = "face_match.callback_secret_rotated", "success"
            subject = f"face_match_callback_secret:{row.org_id}"
    return PendingEntry(
        id=row.sequence,
        org_id=row.org_id,
        request_id=context.new_request_id(),
        actor=row.actor if _ACTOR.fullmatch(row.actor) else "service:face-match",
        action=action,
        subject=subject,
        outcome="denied" if refused else outcome,
        evidence_hashes={},
        details={
            "from": row.from_state or "-",
            "to": row.to_state or "-",
            "detail": row.detail or "-",
        },
    )
