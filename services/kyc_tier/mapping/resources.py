"""kyc-tier's resources as the contract spells them (and a customer's input back)."""

from __future__ import annotations

from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.kyc_tier.v1 import (
    api_keys_pb2,
    attempts_pb2,
    customers_pb2,
    face_pb2,
    kyc_pb2,
    resources_pb2,
)
from services.kyc_tier import attempts, customers, records
from services.kyc_tier.mapping.enums import (
    ATTEMPT_OUTCOME_TO_PROTO,
    KIND_TO_PROTO,
    OUTCOME_TO_PROTO,
    PURPOSE_TO_PROTO,
    SOURCE_TO_PROTO,
    TIER_TO_PROTO,
    reasons,
    scopes_to_proto,
    timestamp,
)
from services.kyc_tier.partners import ApiKeyRecord
from services.kyc_tier.ports import Challenge, EnrollmentInfo


def customer_input(request: customers_pb2.CreateCustomerRequest) -> customers.CustomerInput:
    return customers.CustomerInput(
        external_id=request.external_id,
        full_name=request.full_name,
        nik=request.nik,
        email=request.email,
        phone=request.phone,
    )


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


def enrollment(info: EnrollmentInfo) -> face_pb2.FaceEnrollment:
    return face_pb2.FaceEnrollment(
        enrollment_id=info.enrollment_id,
        customer_id=info.customer_id,
        source=SOURCE_TO_PROTO.get(info.source, types_pb2.ENROLLMENT_SOURCE_UNSPECIFIED),
        active=info.active,
        model_id=info.model_id,
        dimension=info.dimension,
        verification_id=info.verification_id,
        created_at=timestamp(info.created_at),
        retired_at=timestamp(info.retired_at),
    )


def challenge(value: Challenge) -> types_pb2.FlashChallenge:
    return types_pb2.FlashChallenge(
        challenge_id=value.challenge_id,
        purpose=PURPOSE_TO_PROTO.get(value.purpose, types_pb2.CHALLENGE_PURPOSE_UNSPECIFIED),
        sequence=[types_pb2.FlashColour(hex=colour) for colour in value.sequence],
        flash_duration_ms=value.flash_duration_ms,
        issued_at=timestamp(value.issued_at),
        expires_at=timestamp(value.expires_at),
    )
