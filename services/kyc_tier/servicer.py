"""gRPC servicers of kyc-tier: convert, call the flow, convert.

No transaction, decision or validation lives here: each RPC maps its request
with `mapping`, calls one flow of the core (`bootstrap.KycTierCore`) and maps
the flow's result back. Services with no servicer here (and RPCs not
overridden) answer UNIMPLEMENTED / NOT_IMPLEMENTED until their issue lands.
Mutations without a capture nonce are `@idempotent`: they honour the
`idempotency-key` metadata (services/kyc_tier/idempotency.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from identity_platform_api.kyc_tier.v1 import (
    api_keys_pb2,
    api_keys_pb2_grpc,
    attempts_pb2,
    attempts_pb2_grpc,
    customers_pb2,
    customers_pb2_grpc,
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
)
from identity_runtime.context import require_org
from identity_runtime.listing import (
    bound_page,
    filtered_org_page,
    list_reply,
    open_page_token,
    org_page,
)
from identity_runtime.server import CoreServicer
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.mapping import captures, consent, enums, resources, responses
from services.kyc_tier.mapping.idempotent import idempotent


class KycTierServicer(CoreServicer[KycTierCore]):
    """Base of every kyc-tier servicer (here and in console_servicer,
    webhook_servicer, sdk_servicer, org_servicer): each serves the one kyc-tier core."""


class ApiKeyServicer(KycTierServicer, api_keys_pb2_grpc.ApiKeyServiceServicer):
    async def ListApiKeys(
        self, request: api_keys_pb2.ListApiKeysRequest, _: Any
    ) -> api_keys_pb2.ListApiKeysResponse:
        keys = await self.core.api_keys.list(require_org())
        return list_reply(api_keys_pb2.ListApiKeysResponse, keys, api_keys=resources.api_key)

    @idempotent(api_keys_pb2.CreateApiKeyResponse)
    async def CreateApiKey(
        self, request: api_keys_pb2.CreateApiKeyRequest, _: Any
    ) -> api_keys_pb2.CreateApiKeyResponse:
        scopes = enums.scopes_from_proto(request.scopes)
        issued = await self.core.api_keys.create(require_org(), request.name, scopes)
        return responses.issued_api_key(issued)

    @idempotent(api_keys_pb2.RevokeApiKeyResponse)
    async def RevokeApiKey(
        self, request: api_keys_pb2.RevokeApiKeyRequest, _: Any
    ) -> api_keys_pb2.RevokeApiKeyResponse:
        revoked = await self.core.api_keys.revoke(require_org(), request.api_key_id)
        return api_keys_pb2.RevokeApiKeyResponse(api_key=resources.api_key(revoked))

    async def GetApiKeyRevocationEpoch(
        self, request: api_keys_pb2.GetApiKeyRevocationEpochRequest, _: Any
    ) -> api_keys_pb2.GetApiKeyRevocationEpochResponse:
        epoch = await self.core.api_keys.revocation_epoch()
        return api_keys_pb2.GetApiKeyRevocationEpochResponse(epoch=epoch)

    async def AuthenticateApiKey(
        self, request: api_keys_pb2.AuthenticateApiKeyRequest, _: Any
    ) -> api_keys_pb2.AuthenticateApiKeyResponse:
        return responses.caller(await self.core.api_keys.authenticate(request.secret))


class CustomerServicer(KycTierServicer, customers_pb2_grpc.CustomerServiceServicer):
    @idempotent(customers_pb2.CreateCustomerResponse)
    async def CreateCustomer(
        self, request: customers_pb2.CreateCustomerRequest, _: Any
    ) -> customers_pb2.CreateCustomerResponse:
        created = await self.core.customers.create(require_org(), resources.customer_input(request))
        return responses.created_customer(created)

    async def ListCustomers(
        self, request: customers_pb2.ListCustomersRequest, _: Any
    ) -> customers_pb2.ListCustomersResponse:
        org_id = require_org()
        query = resources.customer_query(request)
        position = open_page_token(request, org_id)
        page = await self.core.customers.list(org_id, replace(query, page_token=position))
        return responses.customer_page(bound_page(page, request, org_id))

    async def GetCustomer(
        self, request: customers_pb2.GetCustomerRequest, _: Any
    ) -> customers_pb2.GetCustomerResponse:
        view = await self.core.customers.get(require_org(), request.customer_id)
        return customers_pb2.GetCustomerResponse(customer=resources.customer(view))

    # A repeat answers the erasure's progress, not its first receipt: asking
    # again is how a partner follows an erasure a dependency held up.
    @idempotent(customers_pb2.EraseCustomerResponse, kept_after_erasure=True, answers_current=True)
    async def EraseCustomer(
        self, request: customers_pb2.EraseCustomerRequest, _: Any
    ) -> customers_pb2.EraseCustomerResponse:
        result = await self.core.erasure.erase(require_org(), request.customer_id, request.reason)
        return responses.erased(result)

    @idempotent(customers_pb2.SetLegalHoldResponse)
    async def SetLegalHold(
        self, request: customers_pb2.SetLegalHoldRequest, _: Any
    ) -> customers_pb2.SetLegalHoldResponse:
        view = await self.core.erasure.set_legal_hold(
            require_org(), request.customer_id, request.hold, request.reason
        )
        return customers_pb2.SetLegalHoldResponse(customer=resources.customer(view))

    async def SetRetentionOverride(
        self, request: customers_pb2.SetRetentionOverrideRequest, _: Any
    ) -> customers_pb2.SetRetentionOverrideResponse:
        days, declared = await self.core.erasure.set_retention_override(
            require_org(), request.data_class, request.period_days, request.basis
        )
        return customers_pb2.SetRetentionOverrideResponse(
            data_class=request.data_class, period_days=days, declared_days=declared
        )


class KtpServicer(KycTierServicer, ktp_pb2_grpc.KtpServiceServicer):
    @idempotent(ktp_pb2.IssueKtpChallengeResponse)
    async def IssueKtpChallenge(
        self, request: ktp_pb2.IssueKtpChallengeRequest, _: Any
    ) -> ktp_pb2.IssueKtpChallengeResponse:
        challenge = await self.core.ktp.issue_challenge(require_org(), request.customer_id)
        return ktp_pb2.IssueKtpChallengeResponse(challenge=resources.challenge(challenge))

    async def SubmitKtpCapture(
        self, request: ktp_pb2.SubmitKtpCaptureRequest, _: Any
    ) -> ktp_pb2.SubmitKtpCaptureResponse:
        result = await self.core.ktp.capture(require_org(), captures.ktp_capture_request(request))
        return responses.ktp_capture(result, consent.dropped_metadata(request.bundle))


class FaceServicer(KycTierServicer, face_pb2_grpc.FaceServiceServicer):
    @idempotent(face_pb2.IssueFlashChallengeResponse)
    async def IssueFlashChallenge(
        self, request: face_pb2.IssueFlashChallengeRequest, _: Any
    ) -> face_pb2.IssueFlashChallengeResponse:
        challenge = await self.core.face.issue_flash_challenge(
            require_org(),
            request.customer_id,
            enums.enum_name(enums.PURPOSE_FROM_PROTO, request.purpose, "purpose"),
        )
        return face_pb2.IssueFlashChallengeResponse(challenge=resources.challenge(challenge))

    async def CheckFaceLiveness(
        self, request: face_pb2.CheckFaceLivenessRequest, _: Any
    ) -> face_pb2.CheckFaceLivenessResponse:
        result = await self.core.face.check_liveness(
            require_org(), captures.liveness_request(request)
        )
        return responses.face_liveness(result, consent.dropped_metadata(request.bundle))

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
        return list_reply(
            face_pb2.ListFaceEnrollmentsResponse, found, enrollments=resources.enrollment
        )


class StepUpServicer(KycTierServicer, step_up_pb2_grpc.StepUpServiceServicer):
    async def StepUp(
        self, request: step_up_pb2.StepUpRequest, _: Any
    ) -> step_up_pb2.StepUpResponse:
        result = await self.core.step_up.step_up(require_org(), captures.step_up_request(request))
        return responses.step_up(result, consent.dropped_metadata(request.bundle))


class KycServicer(KycTierServicer, kyc_pb2_grpc.KycServiceServicer):
    @idempotent(kyc_pb2.SubmitDukcapilVerdictResponse)
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

    @idempotent(kyc_pb2.UpgradeKycResponse)
    async def UpgradeKyc(
        self, request: kyc_pb2.UpgradeKycRequest, _: Any
    ) -> kyc_pb2.UpgradeKycResponse:
        upgrade = captures.upgrade_request(request)
        result = await self.core.kyc.upgrade(require_org(), request.customer_id, upgrade)
        return responses.upgrade(result)


class DeviceServicer(KycTierServicer, devices_pb2_grpc.DeviceServiceServicer):
    @idempotent(devices_pb2.RegisterDeviceResponse)
    async def RegisterDevice(
        self, request: devices_pb2.RegisterDeviceRequest, _: Any
    ) -> devices_pb2.RegisterDeviceResponse:
        key = captures.device_key(request)
        registered = await self.core.devices.register(require_org(), request.customer_id, key)
        return responses.device(registered)

    async def ListDevices(
        self, request: devices_pb2.ListDevicesRequest, _: Any
    ) -> devices_pb2.ListDevicesResponse:
        found = await self.core.devices.list(require_org(), request.customer_id)
        return list_reply(devices_pb2.ListDevicesResponse, found, devices=resources.device)

    async def RevokeDevice(
        self, request: devices_pb2.RevokeDeviceRequest, _: Any
    ) -> devices_pb2.RevokeDeviceResponse:
        revoked = await self.core.devices.revoke(
            require_org(), request.customer_id, request.device_id
        )
        return devices_pb2.RevokeDeviceResponse(device=resources.device(revoked))


class AttemptServicer(KycTierServicer, attempts_pb2_grpc.AttemptServiceServicer):
    async def ListAttempts(
        self, request: attempts_pb2.ListAttemptsRequest, _: Any
    ) -> attempts_pb2.ListAttemptsResponse:
        page = await filtered_org_page(
            self.core.kyc.list_attempts, resources.attempt_filter, request
        )
        return responses.attempt_page(attempts_pb2.ListAttemptsResponse, page)

    async def ListCustomerAttempts(
        self, request: attempts_pb2.ListCustomerAttemptsRequest, _: Any
    ) -> attempts_pb2.ListCustomerAttemptsResponse:
        page = await org_page(self.core.kyc.list_customer_attempts, request.customer_id, request)
        return responses.attempt_page(attempts_pb2.ListCustomerAttemptsResponse, page)
