"""What the submission routes answer: plain, frozen views of the rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from identity_runtime.egress import DELIVERY_ERRORS
from services.face_match.models import Callback, Submission


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


def callback_view_of(row: Callback) -> CallbackView:
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


def view_of(
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
        callback=callback_view_of(callback) if callback is not None else None,
    )
