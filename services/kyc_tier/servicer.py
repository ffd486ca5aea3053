"""gRPC servicers of kyc-tier: convert, call the core, convert.

Services whose RPCs are not overridden here answer UNIMPLEMENTED /
NOT_IMPLEMENTED until their issue lands.
"""

from __future__ import annotations

from typing import Any

from identity_platform_api.kyc_tier.v1 import (
    api_keys_pb2,
    api_keys_pb2_grpc,
    attempts_pb2,
    attempts_pb2_grpc,
    console_auth_pb2_grpc,
    customers_pb2,
    customers_pb2_grpc,
    dashboard_pb2_grpc,
    devices_pb2,
    devices_pb2_grpc,
    face_pb2,
    face_pb2_grpc,
    ktp_pb2,
    ktp_pb2_grpc,
    kyc_pb2,
    kyc_pb2_grpc,
    step_up_pb2,
    step_up_pb2_grpc,
    webhooks_pb2_grpc,
)
from identity_runtime import context
from identity_runtime.errors import invalid_field
from services.kyc_tier import attempts, mapping
from services.kyc_tier.bootstrap import KycTierCore


class ApiKeyServicer(api_keys_pb2_grpc.ApiKeyServiceServicer):
    def __init__(self, core: KycTierCore):
        self.core = core

    async def ListApiKeys(
        self, request: api_keys_pb2.ListApiKeysRequest, _: Any
    ) -> api_keys_pb2.ListApiKeysResponse:
        org_id = context.require_org()
        records = await self.core.database.run(
            lambda s: self.core.partners.list_api_keys(s, org_id)
        )
        return api_keys_pb2.ListApiKeysResponse(api_keys=[mapping.api_key(r) for r in records])

    async def CreateApiKey(
        self, request: api_keys_pb2.CreateApiKeyRequest, _: Any
    ) -> api_keys_pb2.CreateApiKeyResponse:
        org_id = context.require_org()
        scopes = mapping.scopes_from_proto(list(request.scopes))
        record, secret = await self.core.database.run(
            lambda s: self.core.partners.create_api_key(s, org_id, request.name, scopes)
        )
        return api_keys_pb2.CreateApiKeyResponse(api_key=mapping.api_key(record), secret=secret)

    async def AuthenticateApiKey(
        self, request: api_keys_pb2.AuthenticateApiKeyRequest, _: Any
    ) -> api_keys_pb2.AuthenticateApiKeyResponse:
        caller = await self.core.database.run(
            lambda s: self.core.partners.authenticate(s, request.secret)
        )
        return api_keys_pb2.AuthenticateApiKeyResponse(
            org_id=caller.org_id,
            api_key_id=caller.api_key_id,
            scopes=mapping.scopes_to_proto(caller.scopes),
        )


class CustomerServicer(customers_pb2_grpc.CustomerServiceServicer):
    def __init__(self, core: KycTierCore):
        self.core = core

    async def CreateCustomer(
        self, request: customers_pb2.CreateCustomerRequest, _: Any
    ) -> customers_pb2.CreateCustomerResponse:
        org_id = context.require_org()
        data = mapping.customer_input(request)
        view, nik_verification = await self.core.flows.create_customer(org_id, data)
        response = customers_pb2.CreateCustomerResponse(customer=mapping.customer(view))
        if nik_verification is not None:
            response.nik_verification.CopyFrom(mapping.verification(nik_verification))
        return response

    async def ListCustomers(
        self, request: customers_pb2.ListCustomersRequest, _: Any
    ) -> customers_pb2.ListCustomersResponse:
        org_id = context.require_org()
        tier = mapping.tier_from_proto(request.tier, "tier")
        created_after = mapping.when(request.created_after)
        views, token = await self.core.database.run(
            lambda s: self.core.customers.list(
                s, org_id, request.page_size, request.page_token, tier, created_after
            )
        )
        return customers_pb2.ListCustomersResponse(
            customers=[mapping.customer(v) for v in views], next_page_token=token
        )

    async def GetCustomer(
        self, request: customers_pb2.GetCustomerRequest, _: Any
    ) -> customers_pb2.GetCustomerResponse:
        org_id = context.require_org()
        view = await self.core.database.run(
            lambda s: self.core.customers.get(s, org_id, request.customer_id)
        )
        return customers_pb2.GetCustomerResponse(customer=mapping.customer(view))

    async def EraseCustomer(
        self, request: customers_pb2.EraseCustomerRequest, _: Any
    ) -> customers_pb2.EraseCustomerResponse:
        org_id = context.require_org()
        erased_at, retired, destroyed = await self.core.flows.erase(
            org_id, request.customer_id, request.reason
        )
        return customers_pb2.EraseCustomerResponse(
            customer_id=request.customer_id,
            erased_at=mapping.timestamp(erased_at),
            enrollments_retired=retired,
            keys_destroyed=destroyed,
        )


class KtpServicer(ktp_pb2_grpc.KtpServiceServicer):
    def __init__(self, core: KycTierCore):
        self.core = core

    async def IssueKtpChallenge(
        self, request: ktp_pb2.IssueKtpChallengeRequest, _: Any
    ) -> ktp_pb2.IssueKtpChallengeResponse:
        challenge = await self.core.flows.issue_challenge(
            context.require_org(), request.customer_id, "ktp_capture"
        )
        return ktp_pb2.IssueKtpChallengeResponse(challenge=challenge.message)

    async def SubmitKtpCapture(
        self, request: ktp_pb2.SubmitKtpCaptureRequest, _: Any
    ) -> ktp_pb2.SubmitKtpCaptureResponse:
        outcome = await self.core.flows.submit_ktp_capture(
            context.require_org(),
            request.customer_id,
            request.challenge_id,
            mapping.bundle_input(request.bundle),
            mapping.ktp_ocr_fields(request.ocr_fields),
        )
        return mapping.ktp_capture_response(outcome)


class FaceServicer(face_pb2_grpc.FaceServiceServicer):
    def __init__(self, core: KycTierCore):
        self.core = core

    async def IssueFlashChallenge(
        self, request: face_pb2.IssueFlashChallengeRequest, _: Any
    ) -> face_pb2.IssueFlashChallengeResponse:
        purpose = mapping.PURPOSE_FROM_PROTO.get(request.purpose, "")
        challenge = await self.core.flows.issue_flash_challenge(
            context.require_org(), request.customer_id, purpose
        )
        return face_pb2.IssueFlashChallengeResponse(challenge=challenge.message)

    async def CheckFaceLiveness(
        self, request: face_pb2.CheckFaceLivenessRequest, _: Any
    ) -> face_pb2.CheckFaceLivenessResponse:
        outcome = await self.core.flows.check_face_liveness(
            context.require_org(),
            request.customer_id,
            request.challenge_id,
            mapping.bundle_input(request.bundle),
        )
        return mapping.liveness_response(outcome)

    async def MatchFace(
        self, request: face_pb2.MatchFaceRequest, _: Any
    ) -> face_pb2.MatchFaceResponse:
        outcome = await self.core.flows.match_face(
            context.require_org(),
            request.customer_id,
            request.probe_image.data,
            request.liveness_verification_id,
            request.reference_image.data,
            mapping.bundle_frames,
        )
        return mapping.match_response(outcome)

    async def ListFaceEnrollments(
        self, request: face_pb2.ListFaceEnrollmentsRequest, _: Any
    ) -> face_pb2.ListFaceEnrollmentsResponse:
        found = await self.core.flows.list_enrollments(
            context.require_org(), request.customer_id, request.include_retired
        )
        return face_pb2.ListFaceEnrollmentsResponse(
            enrollments=[mapping.enrollment(e) for e in found]
        )


class StepUpServicer(step_up_pb2_grpc.StepUpServiceServicer):
    def __init__(self, core: KycTierCore):
        self.core = core

    async def StepUp(
        self, request: step_up_pb2.StepUpRequest, _: Any
    ) -> step_up_pb2.StepUpResponse:
        outcome = await self.core.flows.step_up(
            context.require_org(),
            request.customer_id,
            request.challenge_id,
            mapping.bundle_input(request.bundle),
            request.action,
            request.reference_image.data,
        )
        return mapping.step_up_response(outcome)


class KycServicer(kyc_pb2_grpc.KycServiceServicer):
    def __init__(self, core: KycTierCore):
        self.core = core

    async def SubmitDukcapilVerdict(
        self, request: kyc_pb2.SubmitDukcapilVerdictRequest, _: Any
    ) -> kyc_pb2.SubmitDukcapilVerdictResponse:
        verdict = request.verdict
        outcome = await self.core.flows.submit_dukcapil_verdict(
            context.require_org(),
            request.customer_id,
            {
                "field_matches": dict(verdict.field_matches),
                "face_score": verdict.face_score,
                "reference": verdict.reference,
                "verified_at": mapping.when(verdict.verified_at),
            },
            request.signature,
        )
        return kyc_pb2.SubmitDukcapilVerdictResponse(
            verification=mapping.verification(outcome.verification),
            tier=mapping.TIER_TO_PROTO[outcome.tier],
        )

    async def GetKycStatus(
        self, request: kyc_pb2.GetKycStatusRequest, _: Any
    ) -> kyc_pb2.GetKycStatusResponse:
        status, updated = await self.core.flows.kyc_status(
            context.require_org(), request.customer_id
        )
        return mapping.kyc_status(request.customer_id, status, updated)

    async def UpgradeKyc(
        self, request: kyc_pb2.UpgradeKycRequest, _: Any
    ) -> kyc_pb2.UpgradeKycResponse:
        target = mapping.tier_from_proto(request.target_tier, "target_tier")
        tier, change = await self.core.flows.upgrade(
            context.require_org(), request.customer_id, target, request.review_id, request.note
        )
        response = kyc_pb2.UpgradeKycResponse(tier=mapping.TIER_TO_PROTO[tier])
        if change is not None:
            response.event.CopyFrom(mapping.tier_event(change))
        return response


class DeviceServicer(devices_pb2_grpc.DeviceServiceServicer):
    def __init__(self, core: KycTierCore):
        self.core = core

    async def RegisterDevice(
        self, request: devices_pb2.RegisterDeviceRequest, _: Any
    ) -> devices_pb2.RegisterDeviceResponse:
        reply = await self.core.flows.register_device(
            context.require_org(),
            request.customer_id,
            request.device_id,
            request.algorithm,
            request.public_key_pem,
            request.platform,
        )
        return devices_pb2.RegisterDeviceResponse(
            device_id=reply.device.device_id,
            customer_id=reply.device.customer_id,
            key_fingerprint=reply.device.key_fingerprint,
            registered_at=reply.device.registered_at,
            created=reply.created,
        )


class AttemptServicer(attempts_pb2_grpc.AttemptServiceServicer):
    def __init__(self, core: KycTierCore):
        self.core = core

    async def _list(
        self, filters: attempts.AttemptFilter, size: int, token: str
    ) -> tuple[list[Any], str]:
        org_id = context.require_org()
        views, next_token = await self.core.database.run(
            lambda s: attempts.list_attempts(s, org_id, filters, size, token)
        )
        return [mapping.attempt(v) for v in views], next_token

    async def ListAttempts(
        self, request: attempts_pb2.ListAttemptsRequest, _: Any
    ) -> attempts_pb2.ListAttemptsResponse:
        filters = attempts.AttemptFilter(
            kind=mapping.KIND_FROM_PROTO.get(request.kind, ""),
            outcome=mapping.ATTEMPT_OUTCOME_FROM_PROTO.get(request.outcome, ""),
            start_time=mapping.when(request.start_time),
            end_time=mapping.when(request.end_time),
        )
        items, token = await self._list(filters, request.page_size, request.page_token)
        return attempts_pb2.ListAttemptsResponse(attempts=items, next_page_token=token)

    async def ListCustomerAttempts(
        self, request: attempts_pb2.ListCustomerAttemptsRequest, _: Any
    ) -> attempts_pb2.ListCustomerAttemptsResponse:
        if not request.customer_id:
            raise invalid_field("customer_id", "is required")
        items, token = await self._list(
            attempts.AttemptFilter(customer_id=request.customer_id),
            request.page_size,
            request.page_token,
        )
        return attempts_pb2.ListCustomerAttemptsResponse(attempts=items, next_page_token=token)


def registrations(core: KycTierCore) -> list[tuple[Any, Any]]:
    """Every kyc-tier gRPC service; the generated bases answer UNIMPLEMENTED."""
    return [
        (api_keys_pb2_grpc.add_ApiKeyServiceServicer_to_server, ApiKeyServicer(core)),
        (customers_pb2_grpc.add_CustomerServiceServicer_to_server, CustomerServicer(core)),
        (ktp_pb2_grpc.add_KtpServiceServicer_to_server, KtpServicer(core)),
        (face_pb2_grpc.add_FaceServiceServicer_to_server, FaceServicer(core)),
        (step_up_pb2_grpc.add_StepUpServiceServicer_to_server, StepUpServicer(core)),
        (kyc_pb2_grpc.add_KycServiceServicer_to_server, KycServicer(core)),
        (devices_pb2_grpc.add_DeviceServiceServicer_to_server, DeviceServicer(core)),
        (attempts_pb2_grpc.add_AttemptServiceServicer_to_server, AttemptServicer(core)),
        (
            dashboard_pb2_grpc.add_DashboardServiceServicer_to_server,
            dashboard_pb2_grpc.DashboardServiceServicer(),
        ),
        (
            webhooks_pb2_grpc.add_WebhookServiceServicer_to_server,
            webhooks_pb2_grpc.WebhookServiceServicer(),
        ),
        (
            console_auth_pb2_grpc.add_ConsoleAuthServiceServicer_to_server,
            console_auth_pb2_grpc.ConsoleAuthServiceServicer(),
        ),
    ]
