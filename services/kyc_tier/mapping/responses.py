"""The flows' results as the contract's responses."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from google.protobuf.message import Message

from identity_ktp import compare
from identity_platform_api.kyc_tier.v1 import (
    api_keys_pb2,
    customers_pb2,
    dashboard_pb2,
    devices_pb2,
    face_pb2,
    ktp_pb2,
    kyc_pb2,
    resources_pb2,
    step_up_pb2,
    webhooks_pb2,
)
from identity_runtime.convert import message, timestamp
from services.kyc_tier.attempts import AttemptView
from services.kyc_tier.customers import CustomerView
from services.kyc_tier.flows.api_keys import IssuedApiKey
from services.kyc_tier.flows.customers import CreatedCustomer
from services.kyc_tier.flows.dukcapil import DukcapilResult
from services.kyc_tier.flows.erasure import ErasureResult
from services.kyc_tier.flows.face import FaceMatchResult, LivenessResult
from services.kyc_tier.flows.ktp import KtpCaptureResult
from services.kyc_tier.flows.kyc import KycStatus, UpgradeResult
from services.kyc_tier.flows.reviews import ReviewDecided
from services.kyc_tier.flows.step_up import StepUpResult
from services.kyc_tier.mapping.enums import (
    ERASURE_STATE_TO_PROTO,
    FACE_MATCH_BAND_TO_PROTO,
    KIND_TO_PROTO,
    REVIEW_STATUS_TO_PROTO,
    TIER_TO_PROTO,
    reasons,
    scopes_to_proto,
)
from services.kyc_tier.mapping.resources import (
    api_key,
    attempt,
    customer,
    tier_event,
    verification,
    webhook,
)
from services.kyc_tier.paging import Page
from services.kyc_tier.partners import Caller
from services.kyc_tier.ports import DeviceRegistration, LivenessDecision, MatchResult
from services.kyc_tier.webhook_targets import DeliveryResult
from services.kyc_tier.webhooks import CreatedWebhook

M = TypeVar("M", bound=Message)


def customer_page(page: Page[CustomerView]) -> customers_pb2.ListCustomersResponse:
    return customers_pb2.ListCustomersResponse(
        customers=[customer(v) for v in page.items], next_page_token=page.next_page_token
    )


def attempt_page(cls: type[M], page: Page[AttemptView]) -> M:
    """A ListAttempts or ListCustomerAttempts response."""
    return cls(attempts=[attempt(a) for a in page.items], next_page_token=page.next_page_token)


def liveness_scores(decision: LivenessDecision | None) -> resources_pb2.LivenessScores:
    return message(resources_pb2.LivenessScores, decision)


def match_scores(match: MatchResult | None) -> resources_pb2.MatchScores:
    return message(resources_pb2.MatchScores, match)


FIELD_COMPARISON = {
    compare.MATCH: ktp_pb2.KTP_FIELD_COMPARISON_MATCH,
    compare.MISMATCH: ktp_pb2.KTP_FIELD_COMPARISON_MISMATCH,
    compare.NOT_SUBMITTED: ktp_pb2.KTP_FIELD_COMPARISON_NOT_SUBMITTED,
    compare.NOT_READ: ktp_pb2.KTP_FIELD_COMPARISON_NOT_READ,
}


def ktp_capture(result: KtpCaptureResult, dropped: list[str]) -> ktp_pb2.SubmitKtpCaptureResponse:
    return ktp_pb2.SubmitKtpCaptureResponse(
        verification=verification(result.verification),
        replayed=result.replayed,
        field_checks=[
            ktp_pb2.KtpFieldCheck(
                name=c.name,
                ocr_confidence=c.ocr_confidence,
                matches_submitted=c.matches_submitted,
                comparison=FIELD_COMPARISON[c.comparison],
                similarity=c.similarity,
            )
            for c in result.field_checks
        ],
        enrollment_id=result.enrollment_id,
        tier=TIER_TO_PROTO[result.tier],
        dropped_metadata=dropped,
    )


def face_liveness(result: LivenessResult, dropped: list[str]) -> face_pb2.CheckFaceLivenessResponse:
    evidence = result.assessment
    return face_pb2.CheckFaceLivenessResponse(
        verification=verification(result.recorded.verification),
        liveness=liveness_scores(evidence.liveness),
        quality_reasons=reasons(evidence.face.reasons),
        enrollment_id=evidence.enrollment_id,
        tier=TIER_TO_PROTO[result.recorded.tier],
        dropped_metadata=dropped,
        replayed=result.replayed,
    )


def face_match(result: FaceMatchResult) -> face_pb2.MatchFaceResponse:
    """The decision and its band; no score, no false-match estimate."""
    match = result.assessment.match
    recorded = verification(result.recorded.verification)
    recorded.ClearField("scores")
    return face_pb2.MatchFaceResponse(
        verification=recorded,
        tier=TIER_TO_PROTO[result.recorded.tier],
        decision=face_pb2.FaceMatchDecision(
            match=match.match,
            threshold=match.threshold,
            band=FACE_MATCH_BAND_TO_PROTO[result.assessment.band],
        ),
        replayed=result.replayed,
    )


def step_up(result: StepUpResult, dropped: list[str]) -> step_up_pb2.StepUpResponse:
    return step_up_pb2.StepUpResponse(
        allow=result.allow,
        reasons=reasons(result.reasons),
        verification_id=result.verification_id,
        scores=step_up_pb2.StepUpScores(
            liveness=liveness_scores(result.liveness), match=match_scores(result.match)
        ),
        dropped_metadata=dropped,
        replayed=result.replayed,
        action=result.action,
        reference_source=result.reference_source,
    )


def dukcapil(result: DukcapilResult) -> kyc_pb2.SubmitDukcapilVerdictResponse:
    recorded = result.recorded
    return kyc_pb2.SubmitDukcapilVerdictResponse(
        verification=verification(recorded.verification), tier=TIER_TO_PROTO[recorded.tier]
    )


def kyc_status(customer_id: str, result: KycStatus) -> kyc_pb2.GetKycStatusResponse:
    status = result.status
    return kyc_pb2.GetKycStatusResponse(
        customer_id=customer_id,
        tier=TIER_TO_PROTO[status.tier],
        tier_updated_at=timestamp(result.tier_updated_at),
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


def upgrade(result: UpgradeResult) -> kyc_pb2.UpgradeKycResponse:
    response = kyc_pb2.UpgradeKycResponse(tier=TIER_TO_PROTO[result.tier])
    if result.change is not None:
        response.event.CopyFrom(tier_event(result.change))
    return response


def created_customer(result: CreatedCustomer) -> customers_pb2.CreateCustomerResponse:
    response = customers_pb2.CreateCustomerResponse(customer=customer(result.customer))
    if result.nik_verification is not None:
        response.nik_verification.CopyFrom(verification(result.nik_verification))
    return response


def erased(result: ErasureResult) -> customers_pb2.EraseCustomerResponse:
    """The erasure receipt."""
    return message(
        customers_pb2.EraseCustomerResponse,
        result,
        state=ERASURE_STATE_TO_PROTO[result.state],
        destroyed=list(result.destroyed),
        retained=[message(customers_pb2.RetainedRecord, r) for r in result.retained],
    )


def device(registered: DeviceRegistration) -> devices_pb2.RegisterDeviceResponse:
    return message(devices_pb2.RegisterDeviceResponse, registered)


def issued_api_key(issued: IssuedApiKey) -> api_keys_pb2.CreateApiKeyResponse:
    return api_keys_pb2.CreateApiKeyResponse(api_key=api_key(issued.api_key), secret=issued.secret)


def caller(found: Caller) -> api_keys_pb2.AuthenticateApiKeyResponse:
    scopes = scopes_to_proto(found.scopes)
    return message(api_keys_pb2.AuthenticateApiKeyResponse, found, scopes=scopes)


def review_decided(result: ReviewDecided) -> dashboard_pb2.DecideReviewResponse:
    item = result.item
    return dashboard_pb2.DecideReviewResponse(
        item=message(
            dashboard_pb2.ReviewItem,
            item,
            kind=KIND_TO_PROTO[item.kind],
            reasons=reasons(item.reasons),
            status=REVIEW_STATUS_TO_PROTO[item.status],
        ),
        tier=TIER_TO_PROTO[result.tier],
    )


def created_webhook(created: CreatedWebhook) -> webhooks_pb2.CreateWebhookResponse:
    return webhooks_pb2.CreateWebhookResponse(
        webhook=webhook(created.webhook), signing_secret=created.signing_secret
    )


def webhook_delivery(result: DeliveryResult) -> webhooks_pb2.TestWebhookResponse:
    return message(webhooks_pb2.TestWebhookResponse, result)


def rotated_webhook_secret(
    rotated: CreatedWebhook, previous_expires_at: datetime
) -> webhooks_pb2.RotateWebhookSecretResponse:
    return webhooks_pb2.RotateWebhookSecretResponse(
        webhook=webhook(rotated.webhook),
        signing_secret=rotated.signing_secret,
        previous_secret_expires_at=timestamp(previous_expires_at),
    )
