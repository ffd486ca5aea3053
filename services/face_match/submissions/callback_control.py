"""What a partner does with its callbacks: redeliver a submission's, rotate
the organisation's signing secret (callbacks.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity_runtime.errors import FailedPrecondition
from services.face_match.audit import CALLBACK_REDELIVERED, audit_record
from services.face_match.models import Callback
from services.face_match.submissions.base import SubmissionsBase
from services.face_match.submissions.lifecycle import FINAL, Aborted
from services.face_match.submissions.views import CallbackView, callback_view_of


class CallbackControl(SubmissionsBase):
    async def redeliver_callback(
        self, org_id: str, actor: str, correlation_id: str
    ) -> CallbackView:
        """Queue the submission's callback again now (the same event, a fresh
        retry horizon) when it was delivered or given up; one still pending is
        left as it is. Audited (face_match.callback_redelivered) when it queues."""

        def work(session: Session) -> CallbackView:
            now = self.clock()
            row = self._require(session, org_id, correlation_id, lock=True)
            callback = session.scalars(
                select(Callback)
                .where(Callback.submission_id == row.submission_id)
                .with_for_update()
            ).one_or_none()
            if callback is None:
                if row.state not in FINAL:
                    raise Aborted(
                        "the submission has not finished: its callback is sent when it "
                        "completes, fails or expires",
                        "SUBMISSION_NOT_FINISHED",
                    )
                raise FailedPrecondition(
                    "the submission has no callback to send (created without a callback URL)",
                    "CALLBACK_NOT_CONFIGURED",
                )
            if callback.state != "pending":
                callback.state = "pending"
                callback.attempt_count = 0
                callback.queued_at = now
                callback.next_attempt_at = now
                callback.last_attempt_at = None
                callback.last_status = 0
                callback.last_error = None
                callback.delivered_at = None
                audit_record(
                    session,
                    row.submission_id,
                    row.org_id,
                    row.state,
                    actor,
                    CALLBACK_REDELIVERED,
                    now,
                )
            return callback_view_of(callback)

        return await self.database.run(work)

    async def rotate_callback_secret(
        self, org_id: str, actor: str, overlap_seconds: int
    ) -> tuple[str, datetime]:
        """The organisation's new callback signing secret (shown once) and when
        the previous one stops signing. Audited (face_match.callback_secret_rotated)."""

        def work(session: Session) -> tuple[str, datetime]:
            return self.callback_secrets.rotate(
                session, org_id, actor, overlap_seconds, self.clock()
            )

        try:
            return await self.database.run(work)
        except IntegrityError:
            # The organisation's first row was written concurrently: rotate that one.
            return await self.database.run(work)
