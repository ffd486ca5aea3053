"""Protobuf <-> face-match domain converters."""

from __future__ import annotations

from typing import Any

from identity_platform_api.face_match.v1 import oauth_pb2, submissions_pb2
from identity_runtime.convert import enum_name, enum_names, enum_values, message, timestamp
from services.face_match.oauth import ClientView, IssuedToken
from services.face_match.submissions import lifecycle
from services.face_match.submissions.views import CallbackView, Created, View

STATE_TO_PROTO = enum_values(
    submissions_pb2.SubmissionState,
    "SUBMISSION_STATE_",
    (
        lifecycle.CREATED,
        lifecycle.AWAITING_UPLOAD,
        lifecycle.QUEUED,
        lifecycle.PROCESSING,
        lifecycle.COMPLETED,
        lifecycle.FAILED,
        lifecycle.EXPIRED,
    ),
)
REFERENCE_TO_PROTO = enum_values(
    submissions_pb2.ReferenceType, "REFERENCE_TYPE_", lifecycle.REFERENCE_TYPES
)
REFERENCE_FROM_PROTO = enum_names(REFERENCE_TO_PROTO)
DECISION_TO_PROTO = enum_values(
    submissions_pb2.Decision, "DECISION_", ("MATCH", "NO_MATCH", "REVIEW")
)

# The outbox's "dead" (no attempt left) is FAILED to the partner.
CALLBACK_STATE_TO_PROTO = {
    "pending": submissions_pb2.CALLBACK_STATE_PENDING,
    "delivered": submissions_pb2.CALLBACK_STATE_DELIVERED,
    "dead": submissions_pb2.CALLBACK_STATE_FAILED,
}


def reference_type(value: int) -> str:
    """The request's referenceType: "" when unset (the core says it is
    required), INVALID_FIELD for a number the contract does not define."""
    return enum_name(REFERENCE_FROM_PROTO, value, "reference_type")


def created(done: Created) -> submissions_pb2.CreateSubmissionResponse:
    return submissions_pb2.CreateSubmissionResponse(
        submission_id=done.view.submission_id,
        correlation_id=done.view.correlation_id,
        state=STATE_TO_PROTO[done.view.state],
        uploads=[
            submissions_pb2.PresignedUpload(
                image=u.image,
                url=u.url,
                method="PUT",
                headers=u.headers or {"Content-Type": u.content_type},
                expires_at=timestamp(u.expires_at),
                max_bytes=u.max_bytes,
            )
            for u in done.uploads
        ],
        callback_signing_secret=done.callback_signing_secret,
    )


def status(view: View) -> submissions_pb2.GetSubmissionStatusResponse:
    return submissions_pb2.GetSubmissionStatusResponse(
        correlation_id=view.correlation_id,
        state=STATE_TO_PROTO[view.state],
        updated_at=timestamp(view.updated_at),
        failure_reason=view.failure_reason,
    )


def callback_status(view: CallbackView | None) -> submissions_pb2.CallbackStatus | None:
    if view is None:
        return None
    return submissions_pb2.CallbackStatus(
        state=CALLBACK_STATE_TO_PROTO.get(view.state, submissions_pb2.CALLBACK_STATE_UNSPECIFIED),
        attempts=view.attempts,
        last_attempt_at=timestamp(view.last_attempt_at),
        last_http_status=view.last_status,
        last_error=view.last_error,
        next_attempt_at=timestamp(view.next_attempt_at),
        delivered_at=timestamp(view.delivered_at),
    )


def details(view: View) -> submissions_pb2.SubmissionDetails:
    result: dict[str, Any] = view.result
    box = result.get("reference_portrait")
    return submissions_pb2.SubmissionDetails(
        submission_id=view.submission_id,
        correlation_id=view.correlation_id,
        reference_type=REFERENCE_TO_PROTO.get(
            view.reference_type, submissions_pb2.REFERENCE_TYPE_UNSPECIFIED
        ),
        state=STATE_TO_PROTO[view.state],
        decision=DECISION_TO_PROTO.get(
            result.get("decision", ""), submissions_pb2.DECISION_UNSPECIFIED
        ),
        similarity=float(result.get("similarity", 0.0)),
        fmr_at_score=float(result.get("fmr_at_score", 0.0)),
        quality=[
            submissions_pb2.ImageQuality(
                image=q["image"],
                reasons=q["reasons"],
                inter_eye_pixels=q["inter_eye_pixels"],
                upsampled=q["upsampled"],
            )
            for q in result.get("quality", [])
        ],
        reference_portrait=submissions_pb2.Box(**box) if box else None,
        detector_model_id=result.get("detector_model_id", ""),
        embedding_model_id=result.get("embedding_model_id", ""),
        processing_ms=int(result.get("processing_ms", 0)),
        failure_reason=view.failure_reason,
        transitions=[
            submissions_pb2.Transition(state=STATE_TO_PROTO[state], at=timestamp(at))
            for state, at in view.transitions
        ],
        created_at=timestamp(view.created_at),
        completed_at=timestamp(view.completed_at),
        callback=callback_status(view.callback),
    )


def client(view: ClientView) -> oauth_pb2.OAuthClient:
    return message(oauth_pb2.OAuthClient, view)


def token(issued: IssuedToken) -> oauth_pb2.IssueTokenResponse:
    return oauth_pb2.IssueTokenResponse(
        access_token=issued.access_token,
        token_type="Bearer",
        expires_in=issued.expires_in,
        scope=issued.scope,
    )
