"""Protobuf <-> domain conversions for kyc-tier."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from identity_platform_api.common.v1 import options_pb2, types_pb2
from identity_platform_api.kyc_tier.v1 import (
    api_keys_pb2,
    attempts_pb2,
    customers_pb2,
    face_pb2,
    ktp_pb2,
    kyc_pb2,
    resources_pb2,
    step_up_pb2,
)
from identity_runtime.errors import invalid_field
from services.kyc_tier import attempts, bundles, customers, records, tiers
from services.kyc_tier.partners import ApiKeyRecord
from services.kyc_tier.ports import Attestation, Reason

_SCOPE_TO_PROTO = {"public": options_pb2.SCOPE_PUBLIC, "internal": options_pb2.SCOPE_INTERNAL}
_SCOPE_FROM_PROTO = {v: k for k, v in _SCOPE_TO_PROTO.items()}


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def scopes_from_proto(values: list[int]) -> tuple[str, ...]:
    from identity_runtime.errors import invalid_field

    try:
        return tuple(_SCOPE_FROM_PROTO[v] for v in values)
    except KeyError:
        raise invalid_field(
            "scopes", "only SCOPE_PUBLIC and SCOPE_INTERNAL can be granted"
        ) from None


def scopes_to_proto(values: tuple[str, ...]) -> list[int]:
    return [_SCOPE_TO_PROTO[v] for v in values if v in _SCOPE_TO_PROTO]


def api_key(record: ApiKeyRecord) -> api_keys_pb2.ApiKey:
    return api_keys_pb2.ApiKey(
        api_key_id=record.api_key_id,
        name=record.name,
        scopes=scopes_to_proto(record.scopes),
        prefix=record.prefix,
        created_at=timestamp(record.created_at),
        last_used_at=timestamp(record.last_used_at),
        revoked_at=timestamp(record.revoked_at),
    )


# --- enums ----------------------------------------------------------------------

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


def tier_from_proto(value: int, field: str) -> str:
    if value == types_pb2.KYC_TIER_UNSPECIFIED:
        return ""
    if value not in TIER_FROM_PROTO:
        raise invalid_field(field, "unknown tier")
    return TIER_FROM_PROTO[value]


def reasons(items: tuple[Reason, ...] | list[Reason]) -> list[types_pb2.Reason]:
    return [types_pb2.Reason(code=r.code, message=r.message) for r in items]


def when(message: Any) -> datetime | None:
    return message.ToDatetime(tzinfo=UTC) if message is not None and message.ByteSize() else None


# --- resources -----------------------------------------------------------------------


def customer(view: customers.CustomerView) -> resources_pb2.Customer:
    return resources_pb2.Customer(
        customer_id=view.customer_id,
        external_id=view.external_id,
        full_name=view.full_name,
        nik_masked=view.nik_masked,
        email=view.email,
        phone=view.phone,
        tier=TIER_TO_PROTO[view.tier],
        status=resources_pb2.CUSTOMER_STATUS_ACTIVE
        if view.status == "active"
        else resources_pb2.CUSTOMER_STATUS_ERASED,
        created_at=timestamp(view.created_at),
        updated_at=timestamp(view.updated_at),
        tier_updated_at=timestamp(view.tier_updated_at),
    )


def verification(record: records.VerificationRecord) -> resources_pb2.Verification:
    return resources_pb2.Verification(
        verification_id=record.verification_id,
        customer_id=record.customer_id,
        kind=KIND_TO_PROTO[record.kind],
        outcome=OUTCOME_TO_PROTO[record.outcome],
        reasons=reasons(record.reasons),
        scores=dict(record.scores),
        models=dict(record.models),
        input_hashes=dict(record.input_hashes),
        created_at=timestamp(record.created_at),
        request_id=record.request_id,
    )


def tier_event(change: records.TierChange) -> kyc_pb2.TierEvent:
    return kyc_pb2.TierEvent(
        event_id=change.event_id,
        customer_id=change.customer_id,
        from_tier=TIER_TO_PROTO[change.from_tier],
        to_tier=TIER_TO_PROTO[change.to_tier],
        cause=change.cause,
        verification_id=change.verification_id or "",
        actor=change.actor,
        created_at=timestamp(change.created_at),
    )


def bundle_input(bundle: resources_pb2.CaptureBundle) -> bundles.BundleInput:
    attestation = bundle.attestation
    return bundles.BundleInput(
        frames=tuple(frame.image.data for frame in bundle.frames),
        offsets_ms=tuple(frame.offset_ms for frame in bundle.frames),
        baseline=tuple(frame.baseline for frame in bundle.frames),
        sensors=bundle.sensors.SerializeToString(deterministic=True)
        if bundle.HasField("sensors")
        else b"",
        attestation=Attestation(
            device_id=attestation.device_id,
            nonce=attestation.nonce,
            bundle_sha256=attestation.bundle_sha256,
            signature=attestation.signature,
            captured_at=attestation.captured_at,
        ),
        captured_at=attestation.captured_at.ToDatetime(tzinfo=UTC)
        if attestation.HasField("captured_at")
        else None,
        raw=bundle.SerializeToString(deterministic=True),
    )


def bundle_frames(raw: bytes) -> tuple[list[bytes], list[bool]]:
    """Frames of a sealed bundle, once opened, and which are baselines."""
    parsed = resources_pb2.CaptureBundle()
    parsed.ParseFromString(raw)
    return [frame.image.data for frame in parsed.frames], [
        frame.baseline for frame in parsed.frames
    ]


def liveness_scores(decision: Any) -> resources_pb2.LivenessScores:
    if decision is None:
        return resources_pb2.LivenessScores()
    return resources_pb2.LivenessScores(
        live=decision.live,
        pad_score=decision.pad_score,
        flash_score=decision.flash_score,
        decision_basis=decision.decision_basis,
    )


def match_scores(match: Any) -> resources_pb2.MatchScores:
    if match is None:
        return resources_pb2.MatchScores()
    return resources_pb2.MatchScores(
        score=match.score,
        threshold=match.threshold,
        match=match.match,
        estimated_false_match_rate=match.estimated_false_match_rate,
    )


def ktp_ocr_fields(fields: ktp_pb2.KtpOcrFields) -> dict[str, str]:
    """Submitted OCR fields by KtpField name (capture-quality's vocabulary)."""
    return {
        "nik": fields.nik,
        "name": fields.full_name,
        "birth_place": fields.birth_place,
        "birth_date": fields.birth_date,
        "gender": fields.gender,
        "address": fields.address,
        "rt_rw": fields.rt_rw,
        "village": fields.village,
        "district": fields.district,
        "religion": fields.religion,
        "marital_status": fields.marital_status,
        "occupation": fields.occupation,
        "nationality": fields.nationality,
        "valid_until": fields.valid_until,
        "province": fields.province,
        "regency": fields.regency,
        "blood_type": fields.blood_type,
    }


def ktp_capture_response(outcome: Any) -> ktp_pb2.SubmitKtpCaptureResponse:
    return ktp_pb2.SubmitKtpCaptureResponse(
        verification=verification(outcome.verification),
        replayed=outcome.replayed,
        field_checks=[
            ktp_pb2.KtpFieldCheck(
                name=c["name"],
                ocr_confidence=c["ocr_confidence"],
                matches_submitted=c["matches_submitted"],
            )
            for c in outcome.field_checks
        ],
        enrollment_id=outcome.enrollment_id,
        tier=TIER_TO_PROTO[outcome.tier],
    )


def liveness_response(outcome: Any) -> face_pb2.CheckFaceLivenessResponse:
    return face_pb2.CheckFaceLivenessResponse(
        verification=verification(outcome.verification),
        liveness=liveness_scores(outcome.liveness),
        quality_reasons=reasons(outcome.quality_reasons),
        enrollment_id=outcome.enrollment_id,
        tier=TIER_TO_PROTO[outcome.tier],
    )


def match_response(outcome: Any) -> face_pb2.MatchFaceResponse:
    return face_pb2.MatchFaceResponse(
        verification=verification(outcome.verification),
        match=match_scores(outcome.match),
        tier=TIER_TO_PROTO[outcome.tier],
    )


def step_up_response(outcome: Any) -> step_up_pb2.StepUpResponse:
    return step_up_pb2.StepUpResponse(
        allow=outcome.allow,
        reasons=reasons(outcome.reasons),
        verification_id=outcome.verification.verification_id,
        scores=step_up_pb2.StepUpScores(
            liveness=liveness_scores(outcome.liveness), match=match_scores(outcome.match)
        ),
    )


def enrollment(info: Any) -> face_pb2.FaceEnrollment:
    message = face_pb2.FaceEnrollment(
        enrollment_id=info.enrollment_id,
        customer_id=info.customer_id,
        source=SOURCE_TO_PROTO.get(info.source, types_pb2.ENROLLMENT_SOURCE_UNSPECIFIED),
        active=info.active,
        model_id=info.model_id,
        dimension=info.dimension,
        verification_id=info.verification_id,
    )
    if info.created_at is not None:
        message.created_at.CopyFrom(info.created_at)
    if info.retired_at is not None:
        message.retired_at.CopyFrom(info.retired_at)
    return message


def kyc_status(
    customer_id: str, status: tiers.TierStatus, updated: datetime | None
) -> kyc_pb2.GetKycStatusResponse:
    return kyc_pb2.GetKycStatusResponse(
        customer_id=customer_id,
        tier=TIER_TO_PROTO[status.tier],
        tier_updated_at=timestamp(updated),
        requirements=[
            kyc_pb2.TierRequirement(
                name=r.name,
                tier=TIER_TO_PROTO[r.tier],
                satisfied=bool(r.satisfied_by),
                verification_id=r.satisfied_by,
            )
            for r in status.requirements
        ],
        next_tier=TIER_TO_PROTO[status.next_tier],
        missing_for_next_tier=list(status.missing_for_next),
    )


def attempt(view: attempts.AttemptView) -> attempts_pb2.Attempt:
    return attempts_pb2.Attempt(
        attempt_id=view.attempt_id,
        customer_id=view.customer_id,
        kind=KIND_TO_PROTO.get(view.kind, resources_pb2.VERIFICATION_KIND_UNSPECIFIED),
        outcome=ATTEMPT_OUTCOME_TO_PROTO.get(
            view.outcome, attempts_pb2.ATTEMPT_OUTCOME_UNSPECIFIED
        ),
        reasons=reasons(view.reasons),
        verification_id=view.verification_id,
        request_id=view.request_id,
        created_at=timestamp(view.created_at),
    )


def customer_input(request: customers_pb2.CreateCustomerRequest) -> customers.CustomerInput:
    return customers.CustomerInput(
        external_id=request.external_id,
        full_name=request.full_name,
        nik=request.nik,
        email=request.email,
        phone=request.phone,
    )
