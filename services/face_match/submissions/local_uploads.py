"""The local bucket's presigned uploads, which the gateway forwards here
(bucket.py): asked about before the body is sent, then stored sealed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from identity_runtime.errors import FailedPrecondition, NotFound
from services.face_match.bucket import LocalBucket, S3Store
from services.face_match.models import Submission
from services.face_match.submissions.base import SubmissionsBase
from services.face_match.submissions.lifecycle import AWAITING_UPLOAD, EXPIRED, Aborted, due


class LocalUploads(SubmissionsBase):
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
            if row.state == EXPIRED or due(row, now):
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
