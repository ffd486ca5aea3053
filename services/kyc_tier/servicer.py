"""gRPC servicers of kyc-tier: convert, call the flow, convert.

No transaction, decision or validation lives here: each RPC maps its request
with `mapping`, calls one flow of the core (`bootstrap.KycTierCore`) and maps
the flow's result back. Services whose RPCs are not overridden here answer
UNIMPLEMENTED / NOT_IMPLEMENTED until their issue lands.
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
from identity_runtime.context import require_org
from identity_runtime.server import Registration
from services.kyc_tier.attempts import AttemptFilter
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.flows.customers import CustomerQuery
from services.kyc_tier.mapping import captures, enums, resources, responses


class _Servicer:
    def __init__(self, core: KycTierCore):
        self.core = core


class ApiKeyServicer(_Servicer, api_keys_pb2_grpc.ApiKeyServiceServicer):
    async def ListApiKeys(
        self, request: api_keys_pb2.ListApiKeysRequest, _: Any
    ) -> api_keys_pb2.ListApiKeysResponse:
        keys = await self.core.api_keys.list(require_org())
        return api_keys_pb2.ListApiKeysResponse(api_keys=[resources.api_key(k) for k in keys])

    async def CreateApiKey(
        self, request: api_keys_pb2.CreateApiKeyRequest, _: Any
    ) -> api_keys_pb2.CreateApiKeyResponse:
        scopes = enums.scopes_from_proto(request.scopes)
        issued = await self.core.api_keys.create(require_org(), request.name, scopes)
        return responses.issued_api_key(issued)

    async def AuthenticateApiKey(
        self, request: api_keys_pb2.AuthenticateApiKeyRequest, _: Any
    ) -> api_keys_pb2.AuthenticateApiKeyResponse:
        return responses.caller(await self.core.api_keys.authenticate(request.secret))


class CustomerServicer(_Servicer, customers_pb2_grpc.CustomerServiceServicer):
    async def CreateCustomer(
        self, request: customers_pb2.CreateCustomerRequest, _: Any
    ) -> customers_pb2.CreateCustomerResponse:
        created = await self.core.customers.create(require_org(), resources.customer_input(request))
        return responses.created_customer(created)

    async def ListCustomers(
        self, request: customers_pb2.ListCustomersRequest, _: Any
    ) -> customers_pb2.ListCustomersResponse:
        query = CustomerQuery(
            page_size=request.page_size,
            page_token=request.page_token,
            tier=enums.tier_from_proto(request.tier, "tier"),
            created_after=enums.when(request.created_after),
        )
        page = await self.core.customers.list(require_org(), query)
        return customers_pb2.ListCustomersResponse(
            customers=[resources.customer(v) for v in page.items],
            next_page_token=page.next_page_token,
        )

    async def GetCustomer(
        self, request: customers_pb2.GetCustomerRequest, _: Any
    ) -> customers_pb2.GetCustomerResponse:
        view = await self.core.customers.get(require_org(), request.customer_id)
        return customers_pb2.GetCustomerResponse(customer=resources.customer(view))

    async def EraseCustomer(
        self, request: customers_pb2.EraseCustomerRequest, _: Any
    ) -> customers_pb2.EraseCustomerResponse:
        result = await self.core.erasure.erase(require_org(), request.customer_id, request.reason)
        return responses.erased(result)


class KtpServicer(_Servicer, ktp_pb2_grpc.KtpServiceServicer):
    async def IssueKtpChallenge(
        self, request: ktp_pb2.IssueKtpChallengeRequest, _: Any
    ) -> ktp_pb2.IssueKtpChallengeResponse:
        challenge = await self.core.ktp.issue_challenge(require_org(), request.customer_id)
        return ktp_pb2.IssueKtpChallengeResponse(challenge=resources.challenge(challenge))

    async def SubmitKtpCapture(
        self, request: ktp_pb2.SubmitKtpCaptureRequest, _: Any
    ) -> ktp_pb2.SubmitKtpCaptureResponse:
        result = await self.core.ktp.capture(require_org(), captures.ktp_capture_request(request))
        return responses.ktp_capture(result)


class FaceServicer(_Servicer, face_pb2_grpc.FaceServiceServicer):
    async def IssueFlashChallenge(
        self, request: face_pb2.IssueFlashChallengeRequest, _: Any
    ) -> face_pb2.IssueFlashChallengeResponse:
        challenge = await self.core.face.issue_flash_challenge(
            require_org(), request.customer_id, enums.PURPOSE_FROM_PROTO.get(request.purpose, "")
        )
        return face_pb2.IssueFlashChallengeResponse(challenge=resources.challenge(challenge))

    async def CheckFaceLiveness(
        self, request: face_pb2.CheckFaceLivenessRequest, _: Any
    ) -> face_pb2.CheckFaceLivenessResponse:
        result = await self.core.face.check_liveness(
            require_org(), captures.liveness_request(request)
        )
        return responses.face_liveness(result)

    async def MatchFace(
        self, request: face_pb2.MatchFaceRequest, _: Any
    ) -> face_pb2.MatchFaceResponse:
        result = await self.core.face.match(require_org(), captures.match_request(request))
        return responses.face_match(result)

    async def ListFaceEnrollments(
        self, request: face_pb2.ListFaceEnrollmentsRequest, _: Any
    ) -> face_pb2.ListFaceEnrollmentsResponse:
        found = await self.core.face.list_enrollments(
            require_org(), request.customer_id, request.include_retired
        )
        return face_pb2.ListFaceEnrollmentsResponse(
            enrollments=[resources.enrollment(e) for e in found]
        )


class StepUpServicer(_Servicer, step_up_pb2_grpc.StepUpServiceServicer):
    async def StepUp(
        self, request: step_up_pb2.StepUpRequest, _: Any
    ) -> step_up_pb2.StepUpResponse:
        result = await self.core.step_up.step_up(require_org(), captures.step_up_request(request))
        return responses.step_up(result)


class KycServicer(_Servicer, kyc_pb2_grpc.KycServiceServicer):
    async def SubmitDukcapilVerdict(
        self, request: kyc_pb2.SubmitDukcapilVerdictRequest, _: Any
    ) -> kyc_pb2.SubmitDukcapilVerdictResponse:
        result = await self.core.dukcapil.submit(require_org(), captures.dukcapil_request(request))
        return responses.dukcapil(result)

    async def GetKycStatus(
        self, request: kyc_pb2.GetKycStatusRequest, _: Any
    ) -> kyc_pb2.GetKycStatusResponse:
        status = await self.core.kyc.status(require_org(), request.customer_id)
        return responses.kyc_status(request.customer_id, status)

    async def UpgradeKyc(
        self, request: kyc_pb2.UpgradeKycRequest, _: Any
    ) -> kyc_pb2.UpgradeKycResponse:
        upgrade = captures.upgrade_request(request)
        result = await self.core.kyc.upgrade(require_org(), request.customer_id, upgrade)
        return responses.upgrade(result)


class DeviceServicer(_Servicer, devices_pb2_grpc.DeviceServiceServicer):
    async def RegisterDevice(
        self, request: devices_pb2.RegisterDeviceRequest, _: Any
    ) -> devices_pb2.RegisterDeviceResponse:
        key = captures.device_key(request)
        registered = await self.core.devices.register(require_org(), request.customer_id, key)
        return responses.device(registered)


class AttemptServicer(_Servicer, attempts_pb2_grpc.AttemptServiceServicer):
    async def ListAttempts(
        self, request: attempts_pb2.ListAttemptsRequest, _: Any
    ) -> attempts_pb2.ListAttemptsResponse:
        filters = AttemptFilter(
            kind=enums.KIND_FROM_PROTO.get(request.kind, ""),
            outcome=enums.ATTEMPT_OUTCOME_FROM_PROTO.get(request.outcome, ""),
            start_time=enums.when(request.start_time),
            end_time=enums.when(request.end_time),
        )
        page = await self.core.kyc.list_attempts(
            require_org(), filters, request.page_size, request.page_token
        )
        return attempts_pb2.ListAttemptsResponse(
            attempts=[resources.attempt(a) for a in page.items],
            next_page_token=page.next_page_token,
        )

    async def ListCustomerAttempts(
        self, request: attempts_pb2.ListCustomerAttemptsRequest, _: Any
    ) -> attempts_pb2.ListCustomerAttemptsResponse:
        page = await self.core.kyc.list_customer_attempts(
            require_org(), request.customer_id, request.page_size, request.page_token
        )
        return attempts_pb2.ListCustomerAttemptsResponse(
            attempts=[resources.attempt(a) for a in page.items],
            next_page_token=page.next_page_token,
        )


def registrations(core: KycTierCore) -> list[Registration]:
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
