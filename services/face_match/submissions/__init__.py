"""Submissions: creation (idempotent on correlation id), uploads, confirmation,
status and details, and the lifecycle every transition of which is recorded.
One module per group of routes, each a part of `Submissions`, the class the
servicer calls (convert -> core -> convert):

    lifecycle.py         the states, recording a transition, erasing the rows
    views.py             what the routes answer (View, Created, CallbackView)
    base.py              what every part shares: settings, lookups, expiry
    creation.py          CreateSubmission (the correlation id is idempotent)
    local_uploads.py     AuthorizeUpload and PutObject (the local bucket)
    confirmation.py      ConfirmSubmission (the uploads checked, then queued)
    reads.py             GetSubmissionStatus, GetSubmission
    callback_control.py  RedeliverCallback, RotateCallbackSecret
    retention.py         EraseSubmission, the expiry sweep, the result purge

Domain code: no gRPC. Every write is one transaction.
"""

from __future__ import annotations

from services.face_match.submissions.callback_control import CallbackControl
from services.face_match.submissions.confirmation import Confirmation
from services.face_match.submissions.creation import Creation
from services.face_match.submissions.local_uploads import LocalUploads
from services.face_match.submissions.reads import Reads
from services.face_match.submissions.retention import Retention


class Submissions(Creation, LocalUploads, Confirmation, Reads, CallbackControl, Retention):
    """Face Match's submissions (constructed with SubmissionsBase's fields)."""


__all__ = ["Submissions"]
