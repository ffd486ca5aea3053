"""Every lifecycle transition, erasure and OAuth client change goes into
the platform's audit chain.

A transition row is written in the transaction that changes the state
(submissions/lifecycle.py, record_transition); it is also the outbox of its audit entry.
An erasure is a transition too (to ERASED, detail: the reason code), and an
erase keeps the submission's transitions not yet appended (they hold ids and
codes only) until the relay has appended them. OAuth client creations and
revocations are rows of `fm_audit_outbox`, written with the client change.
`AuditRelay` appends the rows not yet audited to the audit service, oldest
first, as face-match itself (a mesh service: its caller token says "mesh")
for the row's organisation. A transition is action `face_match.<state>`
(e.g. `face_match.completed`, `face_match.erased`), subject
`face_match_submission:<id>`, details `{from, to, detail}`: ids and codes,
never an image or a score. Audit-only transition rows (`audit_record`) keep
the state and record a callback given up or redelivered
(`face_match.callback_failed`, `face_match.callback_redelivered`); a callback
secret rotation, which names no submission, is a row of `fm_audit_outbox`
(`face_match.callback_secret_rotated`, subject
`face_match_callback_secret:<org>`). Delivery is at least once; several
processes may relay at once (rows are claimed with FOR UPDATE SKIP LOCKED for
a short lease), and a failed append leaves the row for the next round. A
round's rows go out as one AppendBatch per run of one organisation's rows
(identity_runtime.audit_delivery, as kyc-tier's outbox relay does), each
with the row's entry key, so a redelivery after a lost answer is not chained
twice. A key is never reused (`face-match:<submission id>:fmt_<random>`,
`face-match:audit:fma_<random>`): the chain drops an entry whose key it
already holds, and a row's sequence number is not unique over time on
SQLite (the numbers of deleted rows come back). Once appended, the
transitions of a submission that is gone (erased, or its result purged)
are deleted.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from identity_runtime import context
from identity_runtime.audit_delivery import GrpcAuditSink, PendingEntry, deliver_batched
from identity_runtime.clients import ClientFactory
from identity_runtime.logs import get_logger
from identity_store.db import Database
from services.face_match.models import AuditOutbox, Submission, Transition
from services.face_match.uploads import UPLOAD_REFUSED

log = get_logger("face_match.audit")
# The two outboxes the relay reads.
_Row = TypeVar("_Row", Transition, AuditOutbox)
# The details of audit-only transition rows (audit_record): the callback's
# delivery given up, or queued again by the partner.
CALLBACK_FAILED = "callback failed"
CALLBACK_REDELIVERED = "callback redelivered"
# What both start with.
CALLBACK_RECORD = "callback "
# Actors the audit chain accepts as they are; workers and the expiry sweep
# act as the service.
_ACTOR = re.compile(r"(api_key|oauth_client|console_user|service|system):[A-Za-z0-9_.\-]{1,100}")
# Refusals a retry cannot fix: the entry is logged and skipped, not retried for ever.
_PERMANENT = frozenset({"INVALID_ARGUMENT", "FAILED_PRECONDITION"})
BATCH = 100
CLAIM = timedelta(seconds=30)


def transition_key(submission_id: str) -> str:
    """A new transition's entry key: names its submission, never reused."""
    return f"face-match:{submission_id}:fmt_{secrets.token_hex(12)}"


def audit_record(
    session: Session,
    submission_id: str,
    org_id: str,
    state: str,
    actor: str,
    detail: str,
    at: datetime,
) -> None:
    """An audit-only row of the transition outbox (the state unchanged):
    a callback given up or redelivered (CALLBACK_FAILED, CALLBACK_REDELIVERED)."""
    session.add(
        Transition(
            submission_id=submission_id,
            org_id=org_id,
            from_state=state,
            to_state=state,
            actor=actor[:128],
            detail=detail[:128],
            at=at,
            audit_key=transition_key(submission_id),
        )
    )


def record(
    session: Session,
    org_id: str,
    actor: str,
    action: str,
    subject: str,
    outcome: str,
    at: datetime,
    details: Mapping[str, str] | None = None,
) -> None:
    """Queue an audit entry (not a transition) in the caller's transaction:
    ids and codes only, never a secret."""
    session.add(
        AuditOutbox(
            audit_key=f"face-match:audit:fma_{secrets.token_hex(12)}",
            org_id=org_id,
            actor=actor,
            action=action,
            subject=subject,
            outcome=outcome,
            details=dict(details or {}),
            at=at,
        )
    )


class AuditRelay:
    def __init__(self, database: Database, clients: ClientFactory, clock: Callable[[], datetime]):
        self.database = database
        self.sink = GrpcAuditSink(
            clients, service_actor="service:face-match", key_prefix="face-match:outbox"
        )
        self.clock = clock

    def _claim(self, session: Session) -> list[PendingEntry]:
        rows = self._claim_rows(session, Transition, Transition.sequence)
        return [_entry(row) for row in rows]

    def _claim_outbox(self, session: Session) -> list[PendingEntry]:
        rows = self._claim_rows(session, AuditOutbox, AuditOutbox.id)
        return [_outbox_entry(row) for row in rows]

    def _claim_rows(
        self, session: Session, model: type[_Row], order: InstrumentedAttribute[int]
    ) -> list[_Row]:
        """The oldest rows of `model` not yet audited nor claimed by another
        relay (or whose claim lapsed), claimed for CLAIM."""
        now = self.clock()
        rows = list(
            session.scalars(
                select(model)
                .where(
                    model.audited_at.is_(None),
                    or_(model.audit_claimed_until.is_(None), model.audit_claimed_until < now),
                )
                .order_by(order)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        )
        for row in rows:
            row.audit_claimed_until = now + CLAIM
        return rows

    async def flush(self) -> int:
        """Append what is pending (transitions, then the other entries); how
        many entries were settled (appended, or refused for good: those are
        logged and skipped)."""
        settled = await self._flush(self._claim, self._settle_transitions)
        return settled + await self._flush(self._claim_outbox, self._settle_outbox)

    async def _flush(
        self,
        claim: Callable[[Session], list[PendingEntry]],
        settle: Callable[[Session, list[int], datetime], None],
    ) -> int:
        batch = await self.database.run(claim)
        if not batch:
            return 0
        done, refused, _ = await deliver_batched(self.sink, batch, permanent=_PERMANENT)
        # The first entry that may go through later, and those after it, stay
        # claimed until their lease ends; the next round retries them in order.
        settled = done + list(refused)
        if settled:
            now = self.clock()
            await self.database.run(lambda s: settle(s, settled, now))
        return len(settled)

    @staticmethod
    def _settle_transitions(session: Session, settled: list[int], now: datetime) -> None:
        session.execute(
            update(Transition).where(Transition.sequence.in_(settled)).values(audited_at=now)
        )
        # An erase (or the result purge) kept these rows until now: it waits
        # for this transaction's row locks, then deletes the appended rows
        # itself; or it committed first, and the submission is gone here.
        session.execute(
            delete(Transition).where(
                Transition.sequence.in_(settled),
                ~select(Submission.submission_id)
                .where(Submission.submission_id == Transition.submission_id)
                .exists(),
            )
        )

    @staticmethod
    def _settle_outbox(session: Session, settled: list[int], now: datetime) -> None:
        session.execute(
            update(AuditOutbox).where(AuditOutbox.id.in_(settled)).values(audited_at=now)
        )


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
        # fm0005 gave a key to each row; a row written before it (by older
        # code) is named by its submission and sequence, unique together.
        entry_key=row.audit_key or f"face-match:{row.submission_id}:{row.sequence}",
    )


def _outbox_entry(row: AuditOutbox) -> PendingEntry:
    return PendingEntry(
        id=row.id,
        org_id=row.org_id,
        request_id=context.new_request_id(),
        actor=row.actor if _ACTOR.fullmatch(row.actor) else "service:face-match",
        action=row.action,
        subject=row.subject,
        outcome=row.outcome,
        evidence_hashes={},
        details={str(k): str(v) for k, v in (row.details or {}).items()},
        entry_key=row.audit_key,
    )
