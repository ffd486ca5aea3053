"""kyc-tier's resources as the contract spells them (and a customer's input back)."""

from __future__ import annotations

from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.kyc_tier.v1 import (
    api_keys_pb2,
    attempts_pb2,
    customers_pb2,
    devices_pb2,
    face_pb2,
    kyc_pb2,
    resources_pb2,
    webhooks_pb2,
)
from identity_runtime.convert import message, same_named
from services.kyc_tier import attempts, customers, records
from services.kyc_tier.attempts import AttemptFilter
from services.kyc_tier.flows.customers import CustomerQuery
from services.kyc_tier.mapping.enums import (
    ATTEMPT_OUTCOME_FROM_PROTO,
    ATTEMPT_OUTCOME_TO_PROTO,
    CUSTOMER_STATUS_TO_PROTO,
    KIND_FROM_PROTO,
    KIND_TO_PROTO,
    OUTCOME_TO_PROTO,
    PURPOSE_TO_PROTO,
    SOURCE_TO_PROTO,
    TIER_TO_PROTO,
    enum_name,
    reasons,
    scopes_to_proto,
    tier_from_proto,
    when,
)
from services.kyc_tier.partners import ApiKeyRecord
from services.kyc_tier.ports import Challenge, DeviceInfo, EnrollmentInfo
from services.kyc_tier.webhook_log import DeliveryView
from services.kyc_tier.webhooks import WebhookRecord


def customer_input(request: customers_pb2.CreateCustomerRequest) -> customers.CustomerInput:
    return same_named(customers.CustomerInput, request)


def customer_query(request: customers_pb2.ListCustomersRequest) -> CustomerQuery:
    return same_named(
        CustomerQuery,
        request,
        tier=tier_from_proto(request.tier, "tier"),
        created_after=when(request.created_after),
    )


def attempt_filter(request: attempts_pb2.ListAttemptsRequest) -> AttemptFilter:
    return AttemptFilter(
        kind=enum_name(KIND_FROM_PROTO, request.kind, "kind"),
        outcome=enum_name(ATTEMPT_OUTCOME_FROM_PROTO, request.outcome, "outcome"),
        start_time=when(request.start_time),
        end_time=when(request.end_time),
    )


def customer(view: customers.CustomerView) -> resources_pb2.Customer:
    return message(
        resources_pb2.Customer,
        view,
        tier=TIER_TO_PROTO[view.tier],
        status=CUSTOMER_STATUS_TO_PROTO.get(view.status, resources_pb2.CUSTOMER_STATUS_ERASED),
    )


def verification(record: records.VerificationRecord) -> resources_pb2.Verification:
    return message(
        resources_pb2.Verification,
        record,
        kind=KIND_TO_PROTO[record.kind],
        outcome=OUTCOME_TO_PROTO[record.outcome],
        reasons=reasons(record.reasons),
        challenge_id=str(record.details.get("challenge_id", "")),
    )


def tier_event(change: records.TierChange) -> kyc_pb2.TierEvent:
    return message(
        kyc_pb2.TierEvent,
        change,
        from_tier=TIER_TO_PROTO[change.from_tier],
        to_tier=TIER_TO_PROTO[change.to_tier],
    )


def attempt(view: attempts.AttemptView) -> attempts_pb2.Attempt:
    return message(
        attempts_pb2.Attempt,
        view,
        kind=KIND_TO_PROTO.get(view.kind, resources_pb2.VERIFICATION_KIND_UNSPECIFIED),
        outcome=ATTEMPT_OUTCOME_TO_PROTO.get(
            view.outcome, attempts_pb2.ATTEMPT_OUTCOME_UNSPECIFIED
        ),
        reasons=reasons(view.reasons),
    )


def api_key(record: ApiKeyRecord) -> api_keys_pb2.ApiKey:
    return message(api_keys_pb2.ApiKey, record, scopes=scopes_to_proto(record.scopes))


def enrollment(info: EnrollmentInfo) -> face_pb2.FaceEnrollment:
    source = SOURCE_TO_PROTO.get(info.source, types_pb2.ENROLLMENT_SOURCE_UNSPECIFIED)
    return message(face_pb2.FaceEnrollment, info, source=source)


def device(info: DeviceInfo) -> devices_pb2.Device:
    return message(devices_pb2.Device, info)


def challenge(value: Challenge) -> types_pb2.FlashChallenge:
    return message(
        types_pb2.FlashChallenge,
        value,
        purpose=PURPOSE_TO_PROTO.get(value.purpose, types_pb2.CHALLENGE_PURPOSE_UNSPECIFIED),
        sequence=[types_pb2.FlashColour(hex=colour) for colour in value.sequence],
    )


def webhook(record: WebhookRecord) -> webhooks_pb2.Webhook:
    return message(webhooks_pb2.Webhook, record, events=list(record.events))


def webhook_delivery(view: DeliveryView) -> webhooks_pb2.WebhookDelivery:
    return message(
        webhooks_pb2.WebhookDelivery,
        view,
        attempt_log=[message(webhooks_pb2.WebhookAttempt, a) for a in view.attempt_log],
    )
