"""The contract's enums and well-known types as kyc-tier's domain spells them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from identity_platform_api.common.v1 import options_pb2, types_pb2
from identity_platform_api.kyc_tier.v1 import attempts_pb2, resources_pb2
from identity_runtime.errors import invalid_field
from services.kyc_tier import tiers
from services.kyc_tier.ports import Reason

SCOPE_TO_PROTO = {"public": options_pb2.SCOPE_PUBLIC, "internal": options_pb2.SCOPE_INTERNAL}
SCOPE_FROM_PROTO = {v: k for k, v in SCOPE_TO_PROTO.items()}
TIER_TO_PROTO = {
    "none": types_pb2.KYC_TIER_NONE,
    "basic": types_pb2.KYC_TIER_BASIC,
    "standard": types_pb2.KYC_TIER_STANDARD,
    "premium": types_pb2.KYC_TIER_PREMIUM,
}
TIER_FROM_PROTO = {v: k for k, v in TIER_TO_PROTO.items()}
KIND_TO_PROTO = {
    tiers.NIK_FORMAT: resources_pb2.VERIFICATION_KIND_NIK_FORMAT,
    tiers.KTP_CAPTURE: resources_pb2.VERIFICATION_KIND_KTP_CAPTURE,
    tiers.FACE_LIVENESS: resources_pb2.VERIFICATION_KIND_FACE_LIVENESS,
    tiers.FACE_MATCH: resources_pb2.VERIFICATION_KIND_FACE_MATCH,
    tiers.DUKCAPIL_VERDICT: resources_pb2.VERIFICATION_KIND_DUKCAPIL_VERDICT,
    tiers.STEP_UP: resources_pb2.VERIFICATION_KIND_STEP_UP,
    tiers.MANUAL_REVIEW: resources_pb2.VERIFICATION_KIND_MANUAL_REVIEW,
}
KIND_FROM_PROTO = {v: k for k, v in KIND_TO_PROTO.items()}
OUTCOME_TO_PROTO = {
    "passed": resources_pb2.VERIFICATION_OUTCOME_PASSED,
    "failed": resources_pb2.VERIFICATION_OUTCOME_FAILED,
    "needs_review": resources_pb2.VERIFICATION_OUTCOME_NEEDS_REVIEW,
}
ATTEMPT_OUTCOME_TO_PROTO = {
    "passed": attempts_pb2.ATTEMPT_OUTCOME_PASSED,
    "failed": attempts_pb2.ATTEMPT_OUTCOME_FAILED,
    "refused": attempts_pb2.ATTEMPT_OUTCOME_REFUSED,
    "needs_review": attempts_pb2.ATTEMPT_OUTCOME_NEEDS_REVIEW,
}
ATTEMPT_OUTCOME_FROM_PROTO = {v: k for k, v in ATTEMPT_OUTCOME_TO_PROTO.items()}
PURPOSE_TO_PROTO = {
    "ktp_capture": types_pb2.CHALLENGE_PURPOSE_KTP_CAPTURE,
    "face_liveness": types_pb2.CHALLENGE_PURPOSE_FACE_LIVENESS,
    "step_up": types_pb2.CHALLENGE_PURPOSE_STEP_UP,
}
PURPOSE_FROM_PROTO = {v: k for k, v in PURPOSE_TO_PROTO.items()}
SOURCE_TO_PROTO = {
    "dukcapil": types_pb2.ENROLLMENT_SOURCE_DUKCAPIL,
    "ktp_extract": types_pb2.ENROLLMENT_SOURCE_KTP_EXTRACT,
    "onboarding_selfie": types_pb2.ENROLLMENT_SOURCE_ONBOARDING_SELFIE,
    "step_up_promotion": types_pb2.ENROLLMENT_SOURCE_STEP_UP_PROMOTION,
}
SOURCE_FROM_PROTO = {v: k for k, v in SOURCE_TO_PROTO.items()}


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def when(message: Timestamp | None) -> datetime | None:
    """A timestamp the caller set, as an aware datetime; None when unset."""
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
    if value == types_pb2.KYC_TIER_UNSPECIFIED:
        return ""
    if value not in TIER_FROM_PROTO:
        raise invalid_field(field, "unknown tier")
    return TIER_FROM_PROTO[value]


def reasons(items: Iterable[Reason]) -> list[types_pb2.Reason]:
    return [types_pb2.Reason(code=r.code, message=r.message) for r in items]


def reasons_from_proto(items: Iterable[types_pb2.Reason]) -> tuple[Reason, ...]:
    return tuple(Reason(r.code, r.message) for r in items)
