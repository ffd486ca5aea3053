"""How long a submission lives: expired when not confirmed in time, erased
on the partner's request or once its result's retention has passed."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.face_match.models import Submission
from services.face_match.submissions.base import SubmissionsBase
from services.face_match.submissions.lifecycle import (
    AWAITING_UPLOAD,
    CREATED,
    ERASED_AFTER_RETENTION,
    ERASED_ON_REQUEST,
    FINAL,
    erase_rows,
)


class Retention(SubmissionsBase):
    async def purge_results(self, retention_days: int) -> int:
        """Delete finished submissions older than the retention; how many."""
        if retention_days <= 0:
            return 0

        def work(session: Session) -> list[str]:
            cutoff = self.clock() - timedelta(days=retention_days)
            rows = session.scalars(
                select(Submission)
                .where(Submission.state.in_(FINAL), Submission.updated_at < cutoff)
                .limit(500)
                .with_for_update(skip_locked=True)
            ).all()
            gone = [row.submission_id for row in rows]
            now = self.clock()
            for row in rows:
                erase_rows(session, row, "system", ERASED_AFTER_RETENTION, now)
            return gone

        gone = await self.database.run(work)
        for submission_id in gone:
            await asyncio.to_thread(self.bucket.delete_submission, submission_id)
        return len(gone)

    async def expire_due(self) -> int:
        """Expire every submission not confirmed within the TTL; how many."""

        def work(session: Session) -> int:
            now = self.clock()
            rows = session.scalars(
                select(Submission)
                .where(
                    Submission.state.in_((CREATED, AWAITING_UPLOAD)),
                    Submission.expires_at <= now,
                )
                .limit(500)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                self._expire_if_due(session, row, now)
            return len(rows)

        return await self.database.run(work)

    async def erase(self, org_id: str, actor: str, correlation_id: str) -> tuple[str, datetime]:
        """Delete the submission, its rows and its images; (submission id,
        when). Audited (face_match.erased, by `actor`)."""

        def work(session: Session) -> tuple[str, datetime]:
            row = self._require(session, org_id, correlation_id, lock=True)
            submission_id, now = row.submission_id, self.clock()
            erase_rows(session, row, actor, ERASED_ON_REQUEST, now)
            return submission_id, now

        submission_id, at = await self.database.run(work)
        await asyncio.to_thread(self.bucket.delete_submission, submission_id)
        return submission_id, at
