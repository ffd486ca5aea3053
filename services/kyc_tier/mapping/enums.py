"""The contract's enums and well-known types as kyc-tier's domain spells them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from identity_platform_api.common.v1 import options_pb2, types_pb2
from identity_platform_api.kyc_tier.v1 import (
    attempts_pb2,
    customers_pb2,
    dashboard_pb2,
    face_pb2,
    resources_pb2,
)

# enum_name is shared (identity_runtime.convert); kyc-tier's mappings take it from here.
from identity_runtime.convert import enum_name as enum_name
from identity_runtime.convert import enum_names, enum_values
from identity_runtime.errors import invalid_field
from services.kyc_tier import tiers
from services.kyc_tier.ports import Reason

SCOPE_TO_PROTO = enum_values(options_pb2.Scope, "SCOPE_", ("public", "internal"))
SCOPE_FROM_PROTO = enum_names(SCOPE_TO_PROTO)
TIER_TO_PROTO = enum_values(types_pb2.KycTier, "KYC_TIER_", tiers.TIERS)
TIER_FROM_PROTO = enum_names(TIER_TO_PROTO)
KIND_TO_PROTO = enum_values(resources_pb2.VerificationKind, "VERIFICATION_KIND_", tiers.KINDS)
KIND_FROM_PROTO = enum_names(KIND_TO_PROTO)
_OUTCOMES = ("passed", "failed", "needs_review")
OUTCOME_TO_PROTO = enum_values(
    resources_pb2.VerificationOutcome, "VERIFICATION_OUTCOME_", _OUTCOMES
)
ATTEMPT_OUTCOME_TO_PROTO = enum_values(
    attempts_pb2.AttemptOutcome,
    "ATTEMPT_OUTCOME_",
    (*_OUTCOMES, "refused", "started", "interrupted"),
)
ATTEMPT_OUTCOME_FROM_PROTO = enum_names(ATTEMPT_OUTCOME_TO_PROTO)
PURPOSE_TO_PROTO = enum_values(
    types_pb2.ChallengePurpose, "CHALLENGE_PURPOSE_", ("ktp_capture", "face_liveness", "step_up")
)
PURPOSE_FROM_PROTO = enum_names(PURPOSE_TO_PROTO)
SOURCE_TO_PROTO = enum_values(
    types_pb2.EnrollmentSource,
    "ENROLLMENT_SOURCE_",
    ("dukcapil", "ktp_extract", "onboarding_selfie", "step_up_promotion"),
)
SOURCE_FROM_PROTO = enum_names(SOURCE_TO_PROTO)
CUSTOMER_STATUS_TO_PROTO = enum_values(
    resources_pb2.CustomerStatus, "CUSTOMER_STATUS_", ("active", "erased", "erasing")
)
FACE_MATCH_BAND_TO_PROTO = enum_values(
    face_pb2.FaceMatchBand, "FACE_MATCH_BAND_", ("low", "medium", "high")
)
REVIEW_STATUS_TO_PROTO = enum_values(
    dashboard_pb2.ReviewStatus,
    "REVIEW_STATUS_",
    ("pending", "approved", "rejected", "withdrawn"),
)
REVIEW_DECISION_FROM_PROTO = enum_names(
    enum_values(dashboard_pb2.ReviewDecision, "REVIEW_DECISION_", ("approve", "reject"))
)
ERASURE_STATE_TO_PROTO = enum_values(
    customers_pb2.ErasureState, "ERASURE_STATE_", ("in_progress", "completed")
)


def when(message: Timestamp | None) -> datetime | None:
    """A timestamp the caller set, as an aware datetime; None when unset (the
    request validation has refused one out of protobuf's range)."""
    return message.ToDatetime(tzinfo=UTC) if message is not None and message.ByteSize() else None


def scopes_from_proto(values: Iterable[int]) -> tuple[str, ...]:
    try:
        return tuple(SCOPE_FROM_PROTO[v] for v in values)
    except KeyError:
        raise invalid_field(
            "scopes", "only SCOPE_PUBLIC and SCOPE_INTERNAL can be granted"
        ) from None


def scopes_to_proto(values: Iterable[str]) -> list[int]:
    return [SCOPE_TO_PROTO[v] for v in values if v in SCOPE_TO_PROTO]


def tier_from_proto(value: int, field: str) -> str:
    return enum_name(TIER_FROM_PROTO, value, field)


def reasons(items: Iterable[Reason]) -> list[types_pb2.Reason]:
    return [types_pb2.Reason(code=r.code, message=r.message) for r in items]


def reasons_from_proto(items: Iterable[types_pb2.Reason]) -> tuple[Reason, ...]:
    return tuple(Reason(r.code, r.message) for r in items)
