"""Submissions: creation (idempotent on correlation id), uploads, confirmation,
status and details, and the lifecycle every transition of which is recorded.

    CREATED -> AWAITING_UPLOAD -> QUEUED -> PROCESSING -> COMPLETED | FAILED
    CREATED / AWAITING_UPLOAD -> EXPIRED (not confirmed within the TTL)
    AWAITING_UPLOAD -> AWAITING_UPLOAD (confirm refused an uploaded image)
    any -> ERASED (erased by the partner, or its result purged; the
                   submission's rows go, the transitions once audited)

Domain code: no gRPC. Every write is one transaction.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity_runtime.egress import DELIVERY_ERRORS, check_url
from identity_runtime.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from identity_store.db import Database
from services.face_match import uploads
from services.face_match.audit import (
    CALLBACK_RECORD,
    CALLBACK_REDELIVERED,
    audit_record,
    transition_key,
)
from services.face_match.bucket import (
    IMAGES,
    LocalBucket,
    ObjectStore,
    S3Store,
    UploadSigner,
    object_key,
)
from services.face_match.callbacks import CallbackSecrets
from services.face_match.callbacks import callback_secret as callback_secret
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
_CORRELATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")


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


@dataclass(frozen=True)
class Upload:
    image: str
    url: str
    content_type: str
    expires_at: datetime
    max_bytes: int
    # Every header the PUT must carry (Content-Type; on S3 the signed
    # server-side encryption headers too).
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CallbackView:
    """Where a submission's callback delivery stands (shown to the partner)."""

    # pending, delivered, dead (every attempt failed).
    state: str
    attempts: int
    last_attempt_at: datetime | None
    last_status: int
    # One of egress.DELIVERY_ERRORS, "" once delivered or before the first attempt.
    last_error: str
    next_attempt_at: datetime | None
    delivered_at: datetime | None


def _callback_view(row: Callback) -> CallbackView:
    error = row.last_error or ""
    return CallbackView(
        state=row.state,
        attempts=row.attempt_count,
        last_attempt_at=row.last_attempt_at,
        last_status=row.last_status,
        # Only a known class reaches the partner, whatever the row holds.
        last_error=error if error in DELIVERY_ERRORS or not error else "network_error",
        next_attempt_at=row.next_attempt_at if row.state == "pending" else None,
        delivered_at=row.delivered_at if row.state == "delivered" else None,
    )


@dataclass(frozen=True)
class View:
    submission_id: str
    correlation_id: str
    reference_type: str
    state: str
    failure_reason: str
    result: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    transitions: list[tuple[str, datetime]] = field(default_factory=list)
    callback: CallbackView | None = None


@dataclass(frozen=True)
class Created:
    view: View
    uploads: list[Upload]
    callback_signing_secret: str


def _view(
    row: Submission,
    transitions: list[tuple[str, datetime]] | None = None,
    callback: Callback | None = None,
) -> View:
    return View(
        submission_id=row.submission_id,
        correlation_id=row.correlation_id,
        reference_type=row.reference_type,
        state=row.state,
        failure_reason=row.failure_reason,
        result=dict(row.result or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
        completed_at=row.completed_at,
        transitions=transitions or [],
        callback=_callback_view(callback) if callback is not None else None,
    )


def check_callback_url(url: str, allow_loopback: bool) -> None:
    """Empty (no callback), or a URL the platform's egress policy allows: the
    same as webhooks' (identity_runtime.egress): https without credentials, no
    private, link-local, CGNAT, mapped, ULA or other non-public address in any
    spelling; loopback (and http) only when `allow_loopback` (development)."""
    if url:
        check_url(url, allow_loopback, field="callback_url")


def _due(row: Submission, now: datetime) -> bool:
    """Whether `row` is past its TTL and not confirmed (so must expire)."""
    return row.state in (CREATED, AWAITING_UPLOAD) and now >= row.expires_at


def _differing_field(row: Submission, reference_type: str, callback_url: str) -> str:
    """The first create parameter (proto name) that differs from `row`'s; ""."""
    if row.reference_type != reference_type:
        return "reference_type"
    if row.callback_url != callback_url:
        return "callback_url"
    return ""


def _erase_rows(session: Session, row: Submission, actor: str, reason: str, at: datetime) -> None:
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


# No generated repr: the callback signing key stays out of logs.
@dataclass(frozen=True, eq=False, repr=False)
class Submissions:
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

    def _uploads(self, row: Submission, now: datetime) -> list[Upload]:
        expires = int(now.timestamp()) + self.upload_url_seconds
        uploads = []
        for image in IMAGES:
            key = object_key(row.submission_id, image)
            if isinstance(self.bucket, S3Store):
                url = self.bucket.presign(key, self.upload_url_seconds)
                headers = self.bucket.upload_headers()
            else:
                url = self.signer.presign(key, expires).url
                headers = {"Content-Type": "image/jpeg"}
            uploads.append(
                Upload(
                    image=image,
                    url=url,
                    content_type="image/jpeg",
                    expires_at=datetime.fromtimestamp(expires, now.tzinfo),
                    max_bytes=self.signer.max_bytes,
                    headers=headers,
                )
            )
        return uploads

    async def create(
        self, org_id: str, actor: str, correlation_id: str, reference_type: str, callback_url: str
    ) -> Created:
        if not _CORRELATION.fullmatch(correlation_id):
            raise InvalidArgument(
                "correlationId must be 1-128 of A-Z a-z 0-9 . _ : - (starting with a letter "
                "or digit)",
                "INVALID_FIELD",
                {"field": "correlation_id"},
            )
        if not reference_type:
            raise InvalidArgument(
                "referenceType is required", "INVALID_FIELD", {"field": "reference_type"}
            )
        if reference_type not in REFERENCE_TYPES:
            raise InvalidArgument(
                "referenceType is not a known reference type",
                "INVALID_FIELD",
                {"field": "reference_type"},
            )
        check_callback_url(callback_url, self.callback_allow_loopback)

        def work(session: Session) -> tuple[Submission, list[Upload], str, str]:
            now = self.clock()
            # The organisation's secret, shown once (callbacks.py).
            secret = self.callback_secrets.shown_on_create(session, org_id, now)
            row = self._find(session, org_id, correlation_id, lock=True)
            if row is None:
                row = Submission(
                    submission_id=new_id("fms"),
                    org_id=org_id,
                    correlation_id=correlation_id,
                    reference_type=reference_type,
                    callback_url=callback_url,
                    state="",
                    created_at=now,
                    updated_at=now,
                    expires_at=now + timedelta(seconds=self.ttl_seconds),
                    result={},
                )
                session.add(row)
                record_transition(session, row, CREATED, actor, now)
                record_transition(session, row, AWAITING_UPLOAD, actor, now)
                session.flush()
            else:
                # Committed even when the create is refused below.
                self._expire_if_due(session, row, now)
                differs = _differing_field(row, reference_type, callback_url)
                if differs:
                    return row, [], "", differs
            uploads = self._uploads(row, now) if row.state == AWAITING_UPLOAD else []
            return row, uploads, secret, ""

        row, uploads, secret, differs = await self._run_create(work)
        if differs:
            # The correlationId is the create's idempotency key: the same
            # parameters are the same submission, others are a conflict.
            # Names the field, never a value.
            raise AlreadyExists(
                f"{differs}: differs from the submission already created with this "
                "correlationId; use a new correlationId",
                "IDEMPOTENCY_KEY_REUSED",
                {"field": differs},
            )
        return Created(_view(row), uploads, secret)

    async def _run_create(
        self, work: Callable[[Session], tuple[Submission, list[Upload], str, str]]
    ) -> tuple[Submission, list[Upload], str, str]:
        try:
            return await self.database.run(work)
        except IntegrityError:
            # Two creates of one correlation id raced; the loser reads the winner's.
            return await self.database.run(work)

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
        if _due(row, now):
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
        if _due(row, now):
            session.refresh(row, with_for_update=True)
            self._expire_if_due(session, row, now)
        return row

    async def _stored_in_store(self, org_id: str, correlation_id: str) -> dict[str, bool]:
        """Which images an external store holds (uploads bypass face-match there)."""
        store = self.bucket
        if not isinstance(store, S3Store):
            return {}
        row = await self.database.run(lambda s: self._find(s, org_id, correlation_id))
        if row is None or row.state != AWAITING_UPLOAD:
            return {}

        def look() -> dict[str, bool]:
            return {
                image: store.size(object_key(row.submission_id, image)) is not None
                for image in IMAGES
            }

        return await asyncio.to_thread(look)

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
                _erase_rows(session, row, "system", ERASED_AFTER_RETENTION, now)
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

    async def confirm(self, org_id: str, actor: str, correlation_id: str) -> View:
        """Queue the submission once both uploads are in the store and decode
        (uploads.py). A refused image is deleted and its upload reopened, in
        the transaction that records the refusal: the submission stays
        AWAITING_UPLOAD and is confirmed after a good upload of that image."""
        stored = await self._stored_in_store(org_id, correlation_id)

        def work(session: Session) -> tuple[View, str, list[uploads.Refusal]]:
            now = self.clock()
            row = self._require(session, org_id, correlation_id, lock=True)
            self._expire_if_due(session, row, now)
            if stored.get("selfie"):
                row.selfie_type = "image/jpeg"
            if stored.get("reference"):
                row.reference_type_uploaded = "image/jpeg"
            if row.state == EXPIRED:
                return _view(row), "expired", []
            if row.state != AWAITING_UPLOAD:
                return _view(row), "", []
            self._require_uploads(row)
            # Checked under the row lock: a local upload cannot replace an
            # object between its check and the queueing.
            refused = self._check_uploads(session, row, actor, now)
            if refused:
                return _view(row), "", refused
            record_transition(session, row, QUEUED, actor, now)
            session.add(
                Job(
                    job_id=new_id("fmj"),
                    submission_id=row.submission_id,
                    state="queued",
                    attempt_count=0,
                    available_at=now,
                    created_at=now,
                )
            )
            return _view(row), "", []

        view, problem, refused = await self.database.run(work)
        if problem == "expired":
            raise FailedPrecondition("the submission has expired", "SUBMISSION_EXPIRED")
        if refused:
            first = refused[0]
            first.metadata["refused"] = ",".join(r.metadata["image"] for r in refused)
            raise first
        return view

    @staticmethod
    def _require_uploads(row: Submission, absent: tuple[str, ...] = ()) -> None:
        missing = [
            image
            for image, uploaded in (
                ("selfie", row.selfie_type),
                ("reference", row.reference_type_uploaded),
            )
            if not uploaded or image in absent
        ]
        if missing:
            raise Aborted(
                "upload both images before confirming",
                "UPLOADS_INCOMPLETE",
                {"missing": ",".join(missing)},
            )

    def _check_uploads(
        self, session: Session, row: Submission, actor: str, now: datetime
    ) -> list[uploads.Refusal]:
        """The refusals of the stored images (uploads.check); each refused
        image's object is deleted, its upload reopened and the refusal
        recorded (a transition AWAITING_UPLOAD -> AWAITING_UPLOAD, audited
        as face_match.upload_refused)."""
        refused: list[uploads.Refusal] = []
        absent: list[str] = []
        seal = (
            self.bucket.seals.for_reading(session, row.org_id, row.submission_id)
            if isinstance(self.bucket, LocalBucket)
            else None
        )
        for image in IMAGES:
            try:
                uploads.check(self.bucket, row.submission_id, image, self.signer.max_bytes, seal)
            except uploads.Absent:
                absent.append(image)
            except uploads.REFUSALS as bad:
                refused.append(bad)
        self._require_uploads(row, tuple(absent))
        if seal is None and isinstance(self.bucket, LocalBucket):
            # A key that is gone (a destroyed row left behind) would refuse
            # the new upload too: the submission starts again with a new key.
            self.bucket.seals.forget(session, row.org_id, row.submission_id)
        for refusal in refused:
            image = refusal.metadata["image"]
            self.bucket.delete(object_key(row.submission_id, image))
            if image == "selfie":
                row.selfie_type = ""
            else:
                row.reference_type_uploaded = ""
            detail = f"{uploads.UPLOAD_REFUSED}: {image} {refusal.reason}"
            record_transition(session, row, AWAITING_UPLOAD, actor, now, detail)
        return refused

    async def status(self, org_id: str, correlation_id: str) -> View:
        return await self.database.run(lambda s: _view(self._current(s, org_id, correlation_id)))

    async def details(self, org_id: str, correlation_id: str) -> View:
        def work(session: Session) -> View:
            row = self._current(session, org_id, correlation_id)
            transitions = session.execute(
                select(Transition.to_state, Transition.at)
                .where(
                    Transition.submission_id == row.submission_id,
                    # Callback audit records are not lifecycle transitions.
                    ~Transition.detail.startswith(CALLBACK_RECORD, autoescape=True),
                )
                .order_by(Transition.sequence)
            ).all()
            callback = session.scalars(
                select(Callback).where(Callback.submission_id == row.submission_id)
            ).one_or_none()
            return _view(row, [(state, at) for state, at in transitions], callback)

        return await self.database.run(work)

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
            return _callback_view(callback)

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

    async def erase(self, org_id: str, actor: str, correlation_id: str) -> tuple[str, datetime]:
        """Delete the submission, its rows and its images; (submission id,
        when). Audited (face_match.erased, by `actor`)."""

        def work(session: Session) -> tuple[str, datetime]:
            row = self._require(session, org_id, correlation_id, lock=True)
            submission_id, now = row.submission_id, self.clock()
            _erase_rows(session, row, actor, ERASED_ON_REQUEST, now)
            return submission_id, now

        submission_id, at = await self.database.run(work)
        await asyncio.to_thread(self.bucket.delete_submission, submission_id)
        return submission_id, at

    def _signed_upload(
        self, key: str, expires: int, signature: str, content_type: str, size: int, now: datetime
    ) -> tuple[LocalBucket, str]:
        """The bucket an upload URL writes to and the image it names, once the
        URL's signature, expiry, content type and size hold (UploadSigner);
        on S3 uploads go straight to the object store, never through here
        (UPLOADS_CLOSED, 409 like every UPLOADS_CLOSED: docs/face-match.md)."""
        if isinstance(self.bucket, S3Store):
            raise Aborted(
                "uploads go straight to the object store on this deployment", "UPLOADS_CLOSED"
            )
        return self.bucket, self.signer.check(key, expires, signature, content_type, size, now)

    async def authorize_upload(
        self, key: str, expires: int, signature: str, content_type: str, size: int | None
    ) -> int:
        """Whether `put_object` would take this upload, asked before its body is
        sent (`size`: the declared one, None when undeclared): the URL's
        signature and expiry, the content type, the size, and the submission
        still awaiting uploads. Writes nothing (`put_object` checks it all
        again, under the row lock); the largest body accepted."""
        now = self.clock()
        # An undeclared size (a chunked body) passes here; put_object checks the body's.
        self._signed_upload(key, expires, signature, content_type, 1 if size is None else size, now)

        def look(session: Session) -> None:
            row = session.get(Submission, key.split("/", 1)[0])
            if row is None:
                raise NotFound("no submission for this upload", "SUBMISSION_NOT_FOUND")
            if row.state == EXPIRED or _due(row, now):
                raise FailedPrecondition("the submission has expired", "SUBMISSION_EXPIRED")
            if row.state != AWAITING_UPLOAD:
                raise Aborted("the submission is no longer awaiting uploads", "UPLOADS_CLOSED")

        await self.database.run(look)
        return self.signer.max_bytes

    async def put_object(
        self, key: str, expires: int, signature: str, content_type: str, data: bytes
    ) -> int:
        now = self.clock()
        bucket, image = self._signed_upload(key, expires, signature, content_type, len(data), now)
        submission_id = key.split("/", 1)[0]

        def work(session: Session) -> bool:
            row = session.get(Submission, submission_id, with_for_update=True)
            if row is None:
                raise NotFound("no submission for this upload", "SUBMISSION_NOT_FOUND")
            self._expire_if_due(session, row, now)
            if row.state == EXPIRED:
                return False  # the expiry is committed, then the upload refused
            if row.state != AWAITING_UPLOAD:
                raise Aborted("the submission is no longer awaiting uploads", "UPLOADS_CLOSED")
            # Sealed under the submission's data key (sealing.py) and written
            # under the row lock: a confirm cannot slip between file and flag.
            seal = bucket.seals.for_upload(session, row.org_id, row.submission_id)
            bucket.put(key, seal.seal(image, data))
            media = content_type.split(";", 1)[0].strip().lower()
            if image == "selfie":
                row.selfie_type = media
            else:
                row.reference_type_uploaded = media
            row.updated_at = now
            return True

        if not await self.database.run(work):
            raise FailedPrecondition("the submission has expired", "SUBMISSION_EXPIRED")
        return len(data)
