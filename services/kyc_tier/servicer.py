"""gRPC servicers of kyc-tier: convert, call the core, convert.

Services whose RPCs are not overridden here answer UNIMPLEMENTED /
NOT_IMPLEMENTED until their issue lands.
"""

from __future__ import annotations

from typing import Any

from identity.kyc_tier.v1 import (
    api_keys_pb2,
    api_keys_pb2_grpc,
    attempts_pb2_grpc,
    console_auth_pb2_grpc,
    customers_pb2_grpc,
    dashboard_pb2_grpc,
    devices_pb2_grpc,
    face_pb2_grpc,
    ktp_pb2_grpc,
    kyc_pb2_grpc,
    step_up_pb2_grpc,
    webhooks_pb2_grpc,
)
from identity_runtime import context
from services.kyc_tier import mapping
from services.kyc_tier.bootstrap import KycTierCore


class ApiKeyServicer(api_keys_pb2_grpc.ApiKeyServiceServicer):
    def __init__(self, core: KycTierCore):
        self.core = core

    async def ListApiKeys(self, request: api_keys_pb2.ListApiKeysRequest, _: Any) -> api_keys_pb2.ListApiKeysResponse:
        org_id = context.require_org()
        records = await self.core.database.run(lambda s: self.core.partners.list_api_keys(s, org_id))
        return api_keys_pb2.ListApiKeysResponse(api_keys=[mapping.api_key(r) for r in records])

    async def CreateApiKey(self, request: api_keys_pb2.CreateApiKeyRequest, _: Any) -> api_keys_pb2.CreateApiKeyResponse:
        org_id = context.require_org()
        scopes = mapping.scopes_from_proto(list(request.scopes))
        record, secret = await self.core.database.run(
            lambda s: self.core.partners.create_api_key(s, org_id, request.name, scopes)
        )
        return api_keys_pb2.CreateApiKeyResponse(api_key=mapping.api_key(record), secret=secret)

    async def AuthenticateApiKey(
        self, request: api_keys_pb2.AuthenticateApiKeyRequest, _: Any
    ) -> api_keys_pb2.AuthenticateApiKeyResponse:
        caller = await self.core.database.run(lambda s: self.core.partners.authenticate(s, request.secret))
        return api_keys_pb2.AuthenticateApiKeyResponse(
            org_id=caller.org_id, api_key_id=caller.api_key_id, scopes=mapping.scopes_to_proto(caller.scopes)
        )


def registrations(core: KycTierCore) -> list[tuple[Any, Any]]:
    """Every kyc-tier gRPC service; the generated bases answer UNIMPLEMENTED."""
    return [
        (api_keys_pb2_grpc.add_ApiKeyServiceServicer_to_server, ApiKeyServicer(core)),
        (customers_pb2_grpc.add_CustomerServiceServicer_to_server, customers_pb2_grpc.CustomerServiceServicer()),
        (ktp_pb2_grpc.add_KtpServiceServicer_to_server, ktp_pb2_grpc.KtpServiceServicer()),
        (face_pb2_grpc.add_FaceServiceServicer_to_server, face_pb2_grpc.FaceServiceServicer()),
        (step_up_pb2_grpc.add_StepUpServiceServicer_to_server, step_up_pb2_grpc.StepUpServiceServicer()),
        (kyc_pb2_grpc.add_KycServiceServicer_to_server, kyc_pb2_grpc.KycServiceServicer()),
        (devices_pb2_grpc.add_DeviceServiceServicer_to_server, devices_pb2_grpc.DeviceServiceServicer()),
        (attempts_pb2_grpc.add_AttemptServiceServicer_to_server, attempts_pb2_grpc.AttemptServiceServicer()),
        (dashboard_pb2_grpc.add_DashboardServiceServicer_to_server, dashboard_pb2_grpc.DashboardServiceServicer()),
        (webhooks_pb2_grpc.add_WebhookServiceServicer_to_server, webhooks_pb2_grpc.WebhookServiceServicer()),
        (
            console_auth_pb2_grpc.add_ConsoleAuthServiceServicer_to_server,
            console_auth_pb2_grpc.ConsoleAuthServiceServicer(),
        ),
    ]
