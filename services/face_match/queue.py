"""The PostgreSQL-backed job queue: leasing with SKIP LOCKED, visibility
timeout, retries with backoff, poison jobs, and fenced completion.

- `lease` takes the oldest ready job (queued, or leased with an expired
  visibility timeout: its worker died) with `FOR UPDATE SKIP LOCKED`, so
  workers never wait on each other's rows; it bumps `attempts`, stamps a fresh
  `lease_token` and hides the job for `visibility` seconds. A job leased
  `max_attempts` times without finishing is poison: it goes to `dead` and its
  submission FAILS with PROCESSING_FAILED instead of being leased again.
- `complete` commits the result, the submission's final state, its
  transition and its callback (outbox) in one transaction, *only if the lease
  token is still the job's*: a worker whose lease expired (paused, killed,
  partitioned) and was re-leased cannot write a second result. Processing is
  therefore exactly-once in effect: many attempts may compute, one commits.
- `release` gives the job back after a transient failure, with backoff.

On SQLite (one machine) `FOR UPDATE SKIP LOCKED` is ignored and the
database's single writer serialises leases instead.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from identity_runtime import metrics
from identity_store.db import Database
from services.face_match.models import Callback, Job, Submission
from services.face_match.submissions.lifecycle import (
    COMPLETED,
    FAILED,
    PROCESSING,
    QUEUED,
    new_id,
    record_transition,
)

# The queue's name in the metrics (identity_queue_depth{queue=...}).
QUEUE = "face_match_jobs"


@dataclass(frozen=True)
class Lease:
    job_id: str
    submission_id: str
    token: str
    attempt: int


class JobQueue:
    def __init__(
        self,
        database: Database,
        *,
        clock: Callable[[], datetime],
        visibility_seconds: float,
        max_attempts: int,
        image_retention_days: int,
        default_callback_url: str = "",
    ):
        self.database = database
        self.clock = clock
        self.visibility = timedelta(seconds=visibility_seconds)
        self.max_attempts = max_attempts
        self.retention = timedelta(days=image_retention_days)
        self.default_callback_url = default_callback_url

    def enqueue_callback(self, session: Session, row: Submission, now: datetime) -> None:
        """The callback of a submission that ended outside the queue (EXPIRED,
        from submissions/), written like the queue's own."""
        self._enqueue_callback(session, row, now)

    async def lease(self, worker: str) -> Lease | None:
        return await self.database.run(lambda s: self._lease(s, worker))

    def _lease(self, session: Session, worker: str) -> Lease | None:
        now = self.clock()
        while True:
            job = session.scalars(
                select(Job)
                .where(or_(Job.state == "queued", Job.state == "leased"), Job.available_at <= now)
                .order_by(Job.available_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if job is None:
                return None
            row = session.get(Submission, job.submission_id, with_for_update=True)
            if row is None:  # erased meanwhile
                job.state, job.finished_at = "done", now
                continue
            if job.attempt_count >= self.max_attempts:
                self._bury(session, job, row, now, worker)
                continue
            job.attempt_count += 1
            job.state = "leased"
            job.lease_token = secrets.token_hex(16)
            job.leased_by = worker[:128]
            job.available_at = now + self.visibility
            if row.state == QUEUED:
                record_transition(session, row, PROCESSING, f"worker:{worker}"[:128], now)
            return Lease(job.job_id, job.submission_id, job.lease_token, job.attempt_count)

    def _bury(
        self, session: Session, job: Job, row: Submission, now: datetime, worker: str
    ) -> None:
        job.state, job.finished_at = "dead", now
        job.last_error = job.last_error or "lease expired"
        row.failure_reason = "PROCESSING_FAILED"
        row.completed_at = now
        row.purge_images_at = now + self.retention
        record_transition(session, row, FAILED, f"worker:{worker}"[:128], now, "poison job")
        self._enqueue_callback(session, row, now)

    async def complete(self, lease: Lease, result: dict[str, Any] | None, failure: str) -> bool:
        """Commit the outcome; False when the lease was lost (another worker owns the job)."""
        return await self.database.run(lambda s: self._complete(s, lease, result, failure))

    def _complete(
        self, session: Session, lease: Lease, result: dict[str, Any] | None, failure: str
    ) -> bool:
        now = self.clock()
        job = session.get(Job, lease.job_id, with_for_update=True)
        if job is None or job.state != "leased" or job.lease_token != lease.token:
            return False
        row = session.get(Submission, lease.submission_id, with_for_update=True)
        job.state, job.finished_at = "done", now
        if row is None:
            return True
        row.completed_at = now
        row.purge_images_at = now + self.retention
        if failure:
            row.failure_reason = failure
            record_transition(session, row, FAILED, "worker", now, failure)
        else:
            row.result = result or {}
            record_transition(session, row, COMPLETED, "worker", now)
        self._enqueue_callback(session, row, now)
        return True

    async def release(self, lease: Lease, error: str) -> bool:
        """Give the job back after a transient error (retried with backoff)."""

        def work(session: Session) -> bool:
            now = self.clock()
            job = session.get(Job, lease.job_id, with_for_update=True)
            if job is None or job.state != "leased" or job.lease_token != lease.token:
                return False
            job.state = "queued"
            job.lease_token = ""
            job.last_error = error[:128]
            job.available_at = now + timedelta(seconds=min(60.0, 2.0**job.attempt_count))
            return True

        return await self.database.run(work)

    def _enqueue_callback(self, session: Session, row: Submission, now: datetime) -> None:
        url = row.callback_url or self.default_callback_url
        if not url:
            return
        body = {
            "event": "face_match.submission." + row.state.lower(),
            # The event id, also sent as X-Identity-Event-Id (worker.py): one
            # id per submission's callback, the same on every attempt.
            "eventId": f"evt_{row.submission_id}",
            "submissionId": row.submission_id,
            "correlationId": row.correlation_id,
            "state": row.state,
            "decision": (row.result or {}).get("decision", ""),
            "failureReason": row.failure_reason,
            "occurredAt": now.isoformat(),
        }
        session.add(
            Callback(
                callback_id=new_id("fmc"),
                submission_id=row.submission_id,
                org_id=row.org_id,
                url=url,
                body=json.dumps(body, sort_keys=True, separators=(",", ":")),
                state="pending",
                attempt_count=0,
                next_attempt_at=now,
                queued_at=now,
            )
        )

    async def measure(self) -> tuple[int, float]:
        """Jobs waiting or in flight and the age of the oldest (seconds), into
        the queue metrics (queue="face_match_jobs"); returned for tests."""

        def read(session: Session) -> tuple[int, Any]:
            row = session.execute(
                select(func.count(Job.job_id), func.min(Job.created_at)).where(
                    Job.state.in_(("queued", "leased"))
                )
            ).one()
            return int(row[0]), row[1]

        depth, oldest = await self.database.run(read)
        return depth, metrics.set_queue(QUEUE, depth, oldest, self.clock())

    async def depth(self) -> int:
        """Jobs waiting or in flight (what the chart scales workers on)."""
        return await self.database.run(
            lambda s: int(
                s.scalar(
                    select(func.count()).select_from(Job).where(Job.state.in_(("queued", "leased")))
                )
                or 0
            )
        )
