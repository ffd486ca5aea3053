"""Workers: drain the queue, deliver callbacks, purge images.

`Worker.run_once` leases one job, reads both images from the bucket, runs the
matcher on a thread, and commits the outcome through the fenced `complete`.
An image the matcher rejects (not an image, no face) FAILS the submission
with its reason; an unexpected error releases the job for a retry, and a job
that keeps failing becomes poison (queue.py). Each worker is one loop; a
process runs `FACE_MATCH_WORKERS` of them and more processes scale out
(`python -m services.face_match.worker`).

`CallbackRelay` posts the pending callbacks of the outbox, signed like
webhooks (HMAC-SHA256 over the raw body, `X-Identity-Signature: sha256=<hex>`
and `X-Quantum-Signature`, one value per secret of the organisation during a
rotation's overlap, callbacks.py; with `X-Identity-Event-Id`, the body's
`eventId`, for de-duplication), with the webhook rules: no redirects, 10 s
timeout (the whole attempt, egress.GuardedPoster), any 2xx is delivered,
retries with the webhooks' backoff (30 s doubling, capped at 6 h, jitter
over the upper half) until
FACE_MATCH_CALLBACK_RETRY_HOURS (72) after it was queued, then dead, which is
audited (face_match.callback_failed). In every
environment a callback goes through the platform's egress policy
(identity_runtime.egress, the same as webhooks'): the host is resolved, every
address must be public (loopback only with FACE_MATCH_CALLBACK_ALLOW_LOOPBACK,
development), and the connection is pinned to the checked address (no DNS
rebinding). An https receiver is verified against the system's CAs plus
FACE_MATCH_CALLBACK_CA_FILE (a partner's private CA). A refused or failed
attempt records why (`last_error`, one of egress.DELIVERY_ERRORS: a class
about the receiver, never its answer), which GetSubmission shows the partner.
A relay keeps up to DELIVERY_CONCURRENCY attempts in flight and claims again
as soon as a slot frees, fairly between the organisations
(identity_runtime.deliveries), so neither one partner's backlog nor its slow
receiver holds up another partner's callback; a claim hides each callback
for longer than its attempt can last, so another process never posts a
callback still in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from identity_runtime import signing
from identity_runtime.deliveries import (
    DELIVERY_CONCURRENCY,
    DeliveryPool,
    claim_lease,
    fair_share,
    settled,
)
from identity_runtime.egress import GuardedPoster, Resolver, retry_backoff
from identity_runtime.logs import get_logger
from identity_store.db import Database
from services.face_match.audit import CALLBACK_FAILED, audit_record
from services.face_match.bucket import LocalBucket, ObjectStore, ObjectTooLarge, object_key
from services.face_match.callbacks import RELAY_ACTOR, CallbackSecrets
from services.face_match.matcher import FaceMatcher, ImageRejected
from services.face_match.models import Callback, Submission
from services.face_match.queue import JobQueue, Lease
from services.face_match.sealing import ObjectSeal, ObjectUnreadable, open_object

log = get_logger("face_match.worker")

# Retries: the webhooks' schedule (egress.retry_backoff: exponential, capped,
# jittered); given up once the next attempt would fall after the retry horizon
# (FACE_MATCH_CALLBACK_RETRY_HOURS) from when it was queued.
DEFAULT_RETRY_HOURS = 72
CALLBACK_TIMEOUT_SECONDS = 10.0
# Due callbacks (the oldest first) a claim looks at to share the free slots
# fairly between the organisations.
CLAIM_WINDOW = 4 * DELIVERY_CONCURRENCY


@dataclass(frozen=True)
class Claimed:
    """One callback claimed for an attempt."""

    callback_id: str
    org_id: str
    secrets: list[bytes]
    url: str
    body: str
    # The attempt's number (attempt_count after the claim).
    attempts: int


def event_id(body: str, fallback: str) -> str:
    """The body's eventId: the header carries the same id."""
    try:
        value = json.loads(body).get("eventId")
    except (ValueError, AttributeError):
        value = None
    return value if isinstance(value, str) and value else fallback


class Worker:
    def __init__(self, name: str, queue: JobQueue, bucket: ObjectStore, matcher: FaceMatcher):
        self.name = name
        self.queue = queue
        self.bucket = bucket
        self.matcher = matcher
        self.completed = 0

    def _read_one(self, submission_id: str, image: str, seal: ObjectSeal | None) -> bytes | None:
        stored = self.bucket.get(object_key(submission_id, image))
        if stored is None or not isinstance(self.bucket, LocalBucket):
            return stored
        # The local bucket's objects are sealed (sealing.py).
        return open_object(seal, image, stored)

    def _read(
        self, submission_id: str, seal: ObjectSeal | None = None
    ) -> tuple[bytes | None, bytes | None]:
        return (
            self._read_one(submission_id, "selfie", seal),
            self._read_one(submission_id, "reference", seal),
        )

    def _seal(self, submission_id: str, session: Session) -> ObjectSeal | None:
        assert isinstance(self.bucket, LocalBucket)
        row = session.get(Submission, submission_id)
        if row is None:
            return None
        return self.bucket.seals.for_reading(session, row.org_id, submission_id)

    async def process(self, lease: Lease) -> bool:
        """Process a leased job; True when this worker's outcome was committed."""
        seal = None
        if isinstance(self.bucket, LocalBucket):
            seal = await self.queue.database.run(partial(self._seal, lease.submission_id))
        try:
            selfie, reference = await asyncio.to_thread(self._read, lease.submission_id, seal)
        except ObjectTooLarge:
            return await self.queue.complete(lease, None, "IMAGE_TOO_LARGE")
        except ObjectUnreadable as bad:
            log.warning(
                "face_match.object_unreadable",
                job_id=lease.job_id,
                # Not "image": the log scrubber masks that key (it would hold bytes).
                slot=bad.image,
                reason=bad.reason,
            )
            return await self.queue.complete(lease, None, bad.reason)
        if selfie is None or reference is None:
            return await self.queue.complete(lease, None, "IMAGE_MISSING")
        try:
            result = await asyncio.to_thread(self.matcher.match, selfie, reference)
        except ImageRejected as rejected:
            return await self.queue.complete(lease, None, rejected.reason)
        except Exception as exc:  # noqa: BLE001 - any crash is retried, then poison
            log.warning("face_match.job_error", job_id=lease.job_id, error=type(exc).__name__)
            await self.queue.release(lease, type(exc).__name__)
            return False
        committed = await self.queue.complete(lease, result, "")
        if not committed:
            log.info("face_match.lease_lost", job_id=lease.job_id)
        return committed

    async def run_once(self) -> bool:
        """Lease and process one job; False when the queue had none ready."""
        lease = await self.queue.lease(self.name)
        if lease is None:
            return False
        if await self.process(lease):
            self.completed += 1
        return True

    async def run(self, poll_seconds: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                busy = await self.run_once()
            except Exception as exc:  # noqa: BLE001 - the database may come back
                log.warning("face_match.worker_error", error=type(exc).__name__)
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll_seconds)


class CallbackRelay:
    def __init__(
        self,
        database: Database,
        *,
        signing_key: str,
        clock: Callable[[], datetime],
        allow_loopback: bool = False,
        ca_file: Path | None = None,
        resolver: Resolver | None = None,
        retry_hours: int = DEFAULT_RETRY_HOURS,
        rand: Callable[[], float] = random.random,
        timeout_seconds: float = CALLBACK_TIMEOUT_SECONDS,
    ):
        self.database = database
        self.secrets = CallbackSecrets(signing_key)
        self.clock = clock
        self.horizon = timedelta(hours=retry_hours)
        self.rand = rand
        self.poster = GuardedPoster(allow_loopback, timeout_seconds, ca_file, resolver=resolver)
        # Hidden while in flight: longer than its attempt can last.
        self.lease = claim_lease(timeout_seconds)
        self.pool: DeliveryPool[Claimed] = DeliveryPool(lambda c: c.org_id, log)

    def _claim(self, room: int, busy: Mapping[Hashable, int], session: Session) -> list[Claimed]:
        """Up to `room` due callbacks, fairly between the organisations
        (`busy`: their attempts in flight), claimed under the lease."""
        now = self.clock()
        window = session.scalars(
            select(Callback)
            .where(Callback.state == "pending", Callback.next_attempt_at <= now)
            .order_by(Callback.next_attempt_at, Callback.callback_id)
            .limit(CLAIM_WINDOW)
            .with_for_update(skip_locked=True)
        ).all()
        claimed = []
        for row in fair_share(window, lambda row: row.org_id, room, busy):
            row.attempt_count += 1
            # Replaced by the attempt's own time when it is settled (a crashed
            # relay's claim counts as an attempt made about now).
            row.last_attempt_at = now
            # Hidden while in flight; a crashed relay's claim comes back after this.
            row.next_attempt_at = now + self.lease
            if row.queued_at is None:  # written by an older release
                row.queued_at = now
            secrets = self.secrets.signing(session, row.org_id, now)
            claimed.append(
                Claimed(row.callback_id, row.org_id, secrets, row.url, row.body, row.attempt_count)
            )
        return claimed

    async def fill(self) -> list[asyncio.Task[bool]]:
        """Claim due callbacks into the free slots and start their attempts;
        the attempts started (each ends settled: whether it was delivered)."""

        def claim(room: int, busy: Mapping[Hashable, int]) -> Awaitable[list[Claimed]]:
            return self.database.run(partial(self._claim, room, busy))

        return await self.pool.fill(claim, self._deliver)

    async def flush(self) -> int:
        """Claim due callbacks into the free slots and wait for their
        attempts; the number delivered."""
        return sum(await settled(await self.fill()))

    async def _deliver(self, claimed: Claimed) -> bool:
        """One attempt, settled; whether it was delivered."""
        attempted = self.clock()
        event = event_id(claimed.body, claimed.callback_id)
        status, error = await self._post(event, claimed.secrets, claimed.url, claimed.body)
        await self.database.run(
            partial(self._settle, claimed.callback_id, status, error, claimed.attempts, attempted)
        )
        return not error

    async def _post(self, event: str, secrets: list[bytes], url: str, body: str) -> tuple[int, str]:
        """(HTTP status, "" or why the attempt failed) of one signed post."""
        raw = body.encode()
        headers = [
            (b"Content-Type", b"application/json"),
            (b"User-Agent", b"IdentityPlatform-FaceMatch/1"),
            (b"X-Identity-Event-Id", event.encode()),
        ] + [(k.encode(), v.encode()) for k, v in signing.signature_headers(secrets, raw).items()]
        result = await self.poster.post(url, raw, headers)
        if result.error == "address_refused":
            log.warning("face_match.callback_refused", event_id=event)
        return result.http_status, result.error

    def _settle(
        self,
        callback_id: str,
        status: int,
        error: str,
        attempts: int,
        attempted: datetime,
        session: Session,
    ) -> None:
        now = self.clock()
        row = session.get(Callback, callback_id, with_for_update=True)
        if row is None or row.state != "pending":  # erased, or settled meanwhile
            return
        row.last_status, row.last_error = status, error or None
        row.last_attempt_at = attempted
        if not error:
            row.state, row.delivered_at = "delivered", now
            return
        retry_at = now + retry_backoff(attempts, self.rand)
        queued = row.queued_at or now
        if queued.tzinfo is None:
            queued = queued.replace(tzinfo=now.tzinfo)
        if retry_at - queued <= self.horizon:
            row.next_attempt_at = retry_at
            return
        row.state = "dead"
        submission = session.get(Submission, row.submission_id)
        if submission is not None:
            audit_record(
                session,
                row.submission_id,
                row.org_id,
                submission.state,
                RELAY_ACTOR,
                f"{CALLBACK_FAILED}: {error} after {attempts} attempts",
                now,
            )
        log.warning("face_match.callback_given_up", callback_id=callback_id, attempts=attempts)

    async def close(self) -> None:
        """Cancel the attempts in flight (their callbacks come back when the
        lease ends); no connection is held between them (one pinned
        connection per post)."""
        await self.pool.close()


async def purge_images(database: Database, bucket: ObjectStore, now: datetime) -> int:
    """Delete the uploaded images whose retention has passed; how many submissions."""

    def due(session: Session) -> list[tuple[str, str]]:
        return [
            (submission_id, org_id)
            for submission_id, org_id in session.execute(
                select(Submission.submission_id, Submission.org_id).where(
                    Submission.purge_images_at.is_not(None),
                    Submission.purge_images_at <= now,
                    Submission.images_purged_at.is_(None),
                )
            )
        ]

    def purged(due: list[tuple[str, str]], session: Session) -> None:
        session.execute(
            update(Submission)
            .where(Submission.submission_id.in_([submission_id for submission_id, _ in due]))
            .values(images_purged_at=now)
        )
        if isinstance(bucket, LocalBucket):
            # Crypto-shred too: a copy of a sealed image (a backup) never opens again.
            for submission_id, org_id in due:
                bucket.seals.destroy(session, org_id, submission_id)

    rows = await database.run(due)
    for submission_id, _ in rows:
        await asyncio.to_thread(bucket.delete_submission, submission_id)
    if rows:
        await database.run(partial(purged, rows))
    return len(rows)
