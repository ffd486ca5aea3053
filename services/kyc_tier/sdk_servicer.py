"""gRPC servicer of browser SDK access (issue 18): convert, call the flow, convert."""

from __future__ import annotations

from typing import Any

from identity_platform_api.kyc_tier.v1 import sdk_sessions_pb2, sdk_sessions_pb2_grpc
from identity_runtime.context import require_org
from identity_runtime.convert import message
from identity_runtime.listing import org_page, page_reply
from services.kyc_tier.sdk_sessions import SdkSessionRecord
from services.kyc_tier.servicer import KycTierServicer


def _session(record: SdkSessionRecord) -> sdk_sessions_pb2.SdkSession:
    return message(sdk_sessions_pb2.SdkSession, record)


class SdkSessionServicer(KycTierServicer, sdk_sessions_pb2_grpc.SdkSessionServiceServicer):
    async def CreateSdkSession(
        self, request: sdk_sessions_pb2.CreateSdkSessionRequest, _: Any
    ) -> sdk_sessions_pb2.CreateSdkSessionResponse:
        minted = await self.core.sdk_sessions.create(
            require_org(), request.customer_id, request.ttl_seconds
        )
        return message(
            sdk_sessions_pb2.CreateSdkSessionResponse, minted, session=_session(minted.record)
        )

    async def RevokeSdkSession(
        self, request: sdk_sessions_pb2.RevokeSdkSessionRequest, _: Any
    ) -> sdk_sessions_pb2.RevokeSdkSessionResponse:
        revoked = await self.core.sdk_sessions.revoke(require_org(), request.session_id)
        return sdk_sessions_pb2.RevokeSdkSessionResponse(session=_session(revoked))

    async def ListCustomerSdkSessions(
        self, request: sdk_sessions_pb2.ListCustomerSdkSessionsRequest, _: Any
    ) -> sdk_sessions_pb2.ListCustomerSdkSessionsResponse:
        page = await org_page(
            self.core.sdk_sessions.list_for_customer, request.customer_id, request
        )
        return page_reply(
            sdk_sessions_pb2.ListCustomerSdkSessionsResponse, page, sdk_sessions=_session
        )

    async def SetSdkOrigins(
        self, request: sdk_sessions_pb2.SetSdkOriginsRequest, _: Any
    ) -> sdk_sessions_pb2.SetSdkOriginsResponse:
        origins = await self.core.sdk_sessions.set_origins(require_org(), list(request.origins))
        return sdk_sessions_pb2.SetSdkOriginsResponse(origins=origins)

    async def AuthenticateSdkSession(
        self, request: sdk_sessions_pb2.AuthenticateSdkSessionRequest, _: Any
    ) -> sdk_sessions_pb2.AuthenticateSdkSessionResponse:
        found = await self.core.sdk_sessions.authenticate(request.token)
        return message(
            sdk_sessions_pb2.AuthenticateSdkSessionResponse,
            found.record,
            origins=found.origins,
            minted_by_oauth_client_id=found.minted_by_oauth_client_id,
        )

    async def CheckSdkOrigin(
        self, request: sdk_sessions_pb2.CheckSdkOriginRequest, _: Any
    ) -> sdk_sessions_pb2.CheckSdkOriginResponse:
        allowed = await self.core.sdk_sessions.origin_allowed(request.origin)
        return sdk_sessions_pb2.CheckSdkOriginResponse(allowed=allowed)
