"""Creating a submission: idempotent on its correlation id, answered with
presigned upload URLs while it awaits uploads."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity_runtime.egress import check_url
from identity_runtime.errors import AlreadyExists, InvalidArgument
from services.face_match.bucket import IMAGES, S3Store, object_key
from services.face_match.models import Submission
from services.face_match.submissions.base import SubmissionsBase
from services.face_match.submissions.lifecycle import (
    AWAITING_UPLOAD,
    CREATED,
    REFERENCE_TYPES,
    new_id,
    record_transition,
)
from services.face_match.submissions.views import Created, Upload, view_of

_CORRELATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")


def check_callback_url(url: str, allow_loopback: bool) -> None:
    """Empty (no callback), or a URL the platform's egress policy allows: the
    same as webhooks' (identity_runtime.egress): https without credentials, no
    private, link-local, CGNAT, mapped, ULA or other non-public address in any
    spelling; loopback (and http) only when `allow_loopback` (development)."""
    if url:
        check_url(url, allow_loopback, field="callback_url")


def _differing_field(row: Submission, reference_type: str, callback_url: str) -> str:
    """The first create parameter (proto name) that differs from `row`'s; ""."""
    if row.reference_type != reference_type:
        return "reference_type"
    if row.callback_url != callback_url:
        return "callback_url"
    return ""


class Creation(SubmissionsBase):
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
        return Created(view_of(row), uploads, secret)

    async def _run_create(
        self, work: Callable[[Session], tuple[Submission, list[Upload], str, str]]
    ) -> tuple[Submission, list[Upload], str, str]:
        try:
            return await self.database.run(work)
        except IntegrityError:
            # Two creates of one correlation id raced; the loser reads the winner's.
            return await self.database.run(work)
