"""What every part of `Submissions` shares: its dependencies and settings,
finding a submission by correlation id, and committing an expiry that is due.

Domain code: no gRPC. Every write is one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from functools import cached_property

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity_runtime.errors import NotFound
from identity_store.db import Database
from services.face_match.bucket import ObjectStore, UploadSigner
from services.face_match.callbacks import CallbackSecrets
from services.face_match.models import Submission
from services.face_match.submissions.lifecycle import EXPIRED, due, record_transition


# No generated repr: the callback signing key stays out of logs.
@dataclass(frozen=True, eq=False, repr=False)
class SubmissionsBase:
    """The dependencies and settings every part of `Submissions` works with
    (constructed as `Submissions(database, bucket, signer, clock=..., ...)`)."""

    database: Database
    bucket: ObjectStore
    signer: UploadSigner
    _: KW_ONLY
    clock: Callable[[], datetime]
    upload_url_seconds: int
    ttl_seconds: int
    callback_signing_key: str
    # Callbacks may target loopback (FACE_MATCH_CALLBACK_ALLOW_LOOPBACK, development).
    callback_allow_loopback: bool = False
    # Writes the callback of a submission that reached an end state, in the
    # transaction that ends it (JobQueue.enqueue_callback): an expiry is an
    # end the partner is told of, like COMPLETED and FAILED.
    enqueue_callback: Callable[[Session, Submission, datetime], None] | None = None

    @cached_property
    def callback_secrets(self) -> CallbackSecrets:
        return CallbackSecrets(self.callback_signing_key)

    def _find(
        self, session: Session, org_id: str, correlation_id: str, *, lock: bool = False
    ) -> Submission | None:
        query = select(Submission).where(
            Submission.org_id == org_id, Submission.correlation_id == correlation_id
        )
        if lock:
            query = query.with_for_update()
        return session.scalars(query).first()

    def _require(
        self, session: Session, org_id: str, correlation_id: str, *, lock: bool = False
    ) -> Submission:
        row = self._find(session, org_id, correlation_id, lock=lock)
        if row is None:
            raise NotFound("no submission with this correlationId", "SUBMISSION_NOT_FOUND")
        return row

    def _expire_if_due(self, session: Session, row: Submission, now: datetime) -> None:
        """Expire `row` (locked) if its TTL has passed: the transition (the
        audit outbox) and the callback, in the caller's transaction. Whichever
        comes first commits it: the sweep, create, confirm, an upload, status
        or details (a refused upload or confirm commits it, then refuses)."""
        if due(row, now):
            record_transition(session, row, EXPIRED, "system", now, "not confirmed in time")
            row.failure_reason = "SUBMISSION_EXPIRED"
            row.purge_images_at = now
            if self.enqueue_callback is not None:
                self.enqueue_callback(session, row, now)

    def _current(self, session: Session, org_id: str, correlation_id: str) -> Submission:
        """The submission as it stands now, for the reads: one past its TTL is
        expired first (under its row lock, re-read: the sweep may have won)."""
        row = self._require(session, org_id, correlation_id)
        now = self.clock()
        if due(row, now):
            session.refresh(row, with_for_update=True)
            self._expire_if_due(session, row, now)
        return row
