"""Confirming a submission: both uploads checked (uploads.py), then queued;
a refused image deleted and its upload reopened."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.orm import Session

from identity_runtime.errors import FailedPrecondition
from services.face_match import uploads
from services.face_match.bucket import IMAGES, LocalBucket, S3Store, object_key
from services.face_match.models import Job, Submission
from services.face_match.submissions.base import SubmissionsBase
from services.face_match.submissions.lifecycle import (
    AWAITING_UPLOAD,
    EXPIRED,
    QUEUED,
    Aborted,
    new_id,
    record_transition,
)
from services.face_match.submissions.views import View, view_of


class Confirmation(SubmissionsBase):
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
                return view_of(row), "expired", []
            if row.state != AWAITING_UPLOAD:
                return view_of(row), "", []
            self._require_uploads(row)
            # Checked under the row lock: a local upload cannot replace an
            # object between its check and the queueing.
            refused = self._check_uploads(session, row, actor, now)
            if refused:
                return view_of(row), "", refused
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
            return view_of(row), "", []

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
