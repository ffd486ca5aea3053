"""gRPC servicers of the analyst console (issue 11): the dashboard and
console sign-in. Like servicer.py: convert, call one flow, convert."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from identity_platform_api.kyc_tier.v1 import (
    console_auth_pb2,
    console_auth_pb2_grpc,
    dashboard_pb2,
    dashboard_pb2_grpc,
)
from identity_runtime.context import require_org
from identity_runtime.listing import filtered_org_page, org_page, page_reply
from services.kyc_tier.mapping import console as console_mapping
from services.kyc_tier.mapping import enums, resources, responses
from services.kyc_tier.mapping.idempotent import idempotent
from services.kyc_tier.servicer import KycTierServicer

# The streamed and the one-message export requests carry the same fields. The
# one-message RPCs are deprecated in the contract: no caller is admitted to
# them (dashboard.proto); they are served only for wire compatibility.
CustomersExport = dashboard_pb2.StreamCustomersCsvRequest | dashboard_pb2.ExportCustomersCsvRequest
VerificationsExport = (
    dashboard_pb2.StreamVerificationsCsvRequest | dashboard_pb2.ExportVerificationsCsvRequest
)


class DashboardServicer(KycTierServicer, dashboard_pb2_grpc.DashboardServiceServicer):
    async def SearchCustomers(
        self, request: dashboard_pb2.SearchCustomersRequest, _: Any
    ) -> dashboard_pb2.SearchCustomersResponse:
        page = await org_page(self.core.dashboard.search, request.q, request)
        return console_mapping.search_page(page)

    async def ListReviewQueue(
        self, request: dashboard_pb2.ListReviewQueueRequest, _: Any
    ) -> dashboard_pb2.ListReviewQueueResponse:
        page = await filtered_org_page(
            self.core.dashboard.review_queue, console_mapping.review_query, request
        )
        return console_mapping.review_page(page)

    async def GetReviewPortrait(
        self, request: dashboard_pb2.GetReviewPortraitRequest, _: Any
    ) -> dashboard_pb2.GetReviewPortraitResponse:
        image = await self.core.dashboard.review_portrait(
            require_org(), request.review_id, request.customer_id
        )
        return dashboard_pb2.GetReviewPortraitResponse(body=console_mapping.jpeg_body(image))

    async def ListCustomerVerifications(
        self, request: dashboard_pb2.ListCustomerVerificationsRequest, _: Any
    ) -> dashboard_pb2.ListCustomerVerificationsResponse:
        page = await org_page(self.core.dashboard.verifications, request.customer_id, request)
        return page_reply(
            dashboard_pb2.ListCustomerVerificationsResponse,
            page,
            verifications=resources.verification,
        )

    async def ListTierEvents(
        self, request: dashboard_pb2.ListTierEventsRequest, _: Any
    ) -> dashboard_pb2.ListTierEventsResponse:
        page = await filtered_org_page(
            self.core.dashboard.tier_events, console_mapping.tier_event_query, request
        )
        return console_mapping.tier_event_page(page)

    async def StreamCustomersCsv(
        self, request: dashboard_pb2.StreamCustomersCsvRequest, _: Any
    ) -> AsyncIterator[dashboard_pb2.StreamCustomersCsvResponse]:
        async for chunk in self._customers(request):
            yield dashboard_pb2.StreamCustomersCsvResponse(body=console_mapping.csv_body(chunk))

    async def StreamVerificationsCsv(
        self, request: dashboard_pb2.StreamVerificationsCsvRequest, _: Any
    ) -> AsyncIterator[dashboard_pb2.StreamVerificationsCsvResponse]:
        async for chunk in self._verifications(request):
            yield dashboard_pb2.StreamVerificationsCsvResponse(body=console_mapping.csv_body(chunk))

    async def ExportCustomersCsv(
        self, request: dashboard_pb2.ExportCustomersCsvRequest, _: Any
    ) -> dashboard_pb2.ExportCustomersCsvResponse:
        data = b"".join([chunk async for chunk in self._customers(request)])
        return dashboard_pb2.ExportCustomersCsvResponse(body=console_mapping.csv_body(data))

    async def ExportVerificationsCsv(
        self, request: dashboard_pb2.ExportVerificationsCsvRequest, _: Any
    ) -> dashboard_pb2.ExportVerificationsCsvResponse:
        data = b"".join([chunk async for chunk in self._verifications(request)])
        return dashboard_pb2.ExportVerificationsCsvResponse(body=console_mapping.csv_body(data))

    def _customers(self, request: CustomersExport) -> AsyncIterator[bytes]:
        return self.core.dashboard.export_customers(
            require_org(),
            enums.tier_from_proto(request.tier, "tier"),
            enums.when(request.created_after),
            enums.when(request.created_before),
        )

    def _verifications(self, request: VerificationsExport) -> AsyncIterator[bytes]:
        return self.core.dashboard.export_verifications(
            require_org(),
            enums.enum_name(enums.KIND_FROM_PROTO, request.kind, "kind"),
            enums.when(request.created_after),
            enums.when(request.created_before),
        )

    @idempotent(dashboard_pb2.DecideReviewResponse)
    async def DecideReview(
        self, request: dashboard_pb2.DecideReviewRequest, _: Any
    ) -> dashboard_pb2.DecideReviewResponse:
        decided = await self.core.reviews.decide(
            require_org(),
            request.review_id,
            enums.enum_name(enums.REVIEW_DECISION_FROM_PROTO, request.decision, "decision"),
            request.note,
        )
        return responses.review_decided(decided)


class ConsoleAuthServicer(KycTierServicer, console_auth_pb2_grpc.ConsoleAuthServiceServicer):
    async def Login(
        self, request: console_auth_pb2.LoginRequest, _: Any
    ) -> console_auth_pb2.LoginResponse:
        opened = await self.core.console.login(request.email, request.password)
        return console_auth_pb2.LoginResponse(session=console_mapping.opened_session(opened))

    async def Logout(
        self, request: console_auth_pb2.LogoutRequest, _: Any
    ) -> console_auth_pb2.LogoutResponse:
        await self.core.console.logout(require_org(), request.session_token)
        return console_auth_pb2.LogoutResponse()

    async def GetMe(
        self, request: console_auth_pb2.GetMeRequest, _: Any
    ) -> console_auth_pb2.GetMeResponse:
        return console_auth_pb2.GetMeResponse(
            user=console_mapping.console_user(await self.core.console_users.me(require_org()))
        )

    async def AuthenticateSession(
        self, request: console_auth_pb2.AuthenticateSessionRequest, _: Any
    ) -> console_auth_pb2.AuthenticateSessionResponse:
        caller = await self.core.console.authenticate(
            request.token, request.check_csrf, request.csrf_token
        )
        return console_mapping.session_caller(caller)

    async def CreateConsoleUser(
        self, request: console_auth_pb2.CreateConsoleUserRequest, _: Any
    ) -> console_auth_pb2.CreateConsoleUserResponse:
        # Console admins only: the declared console role (console_roles.py).
        user = await self.core.console_users.create_user(
            require_org(),
            request.email,
            request.display_name,
            tuple(request.roles),
            request.password,
        )
        return console_auth_pb2.CreateConsoleUserResponse(user=console_mapping.console_user(user))

    async def BeginPasskeyRegistration(
        self, request: console_auth_pb2.BeginPasskeyRegistrationRequest, _: Any
    ) -> console_auth_pb2.BeginPasskeyRegistrationResponse:
        options = await self.core.passkeys.begin_registration(require_org())
        return console_auth_pb2.BeginPasskeyRegistrationResponse(options_json=options)

    async def FinishPasskeyRegistration(
        self, request: console_auth_pb2.FinishPasskeyRegistrationRequest, _: Any
    ) -> console_auth_pb2.FinishPasskeyRegistrationResponse:
        passkey_id = await self.core.passkeys.finish_registration(
            require_org(), request.credential_json, request.passkey_name
        )
        return console_auth_pb2.FinishPasskeyRegistrationResponse(passkey_id=passkey_id)

    async def BeginPasskeyAuthentication(
        self, request: console_auth_pb2.BeginPasskeyAuthenticationRequest, _: Any
    ) -> console_auth_pb2.BeginPasskeyAuthenticationResponse:
        ceremony = await self.core.passkeys.begin_authentication(request.email)
        return console_mapping.ceremony(ceremony)

    async def FinishPasskeyAuthentication(
        self, request: console_auth_pb2.FinishPasskeyAuthenticationRequest, _: Any
    ) -> console_auth_pb2.FinishPasskeyAuthenticationResponse:
        opened = await self.core.passkeys.finish_authentication(
            request.ceremony_id, request.credential_json
        )
        return console_auth_pb2.FinishPasskeyAuthenticationResponse(
            session=console_mapping.opened_session(opened)
        )

    async def SetConsolePolicy(
        self, request: console_auth_pb2.SetConsolePolicyRequest, _: Any
    ) -> console_auth_pb2.SetConsolePolicyResponse:
        required = await self.core.console_users.set_policy(require_org(), request.passkey_required)
        return console_auth_pb2.SetConsolePolicyResponse(passkey_required=required)

    async def ListConsoleUsers(
        self, request: console_auth_pb2.ListConsoleUsersRequest, _: Any
    ) -> console_auth_pb2.ListConsoleUsersResponse:
        users = await self.core.console_admin.list_users(require_org())
        return console_auth_pb2.ListConsoleUsersResponse(
            users=[console_mapping.console_user(user) for user in users]
        )

    async def DisableConsoleUser(
        self, request: console_auth_pb2.DisableConsoleUserRequest, _: Any
    ) -> console_auth_pb2.DisableConsoleUserResponse:
        user, revoked = await self.core.console_admin.disable(require_org(), request.user_id)
        return console_auth_pb2.DisableConsoleUserResponse(
            user=console_mapping.console_user(user), sessions_revoked=revoked
        )

    async def SetConsoleUserRoles(
        self, request: console_auth_pb2.SetConsoleUserRolesRequest, _: Any
    ) -> console_auth_pb2.SetConsoleUserRolesResponse:
        user = await self.core.console_admin.set_roles(
            require_org(), request.user_id, tuple(request.roles)
        )
        return console_auth_pb2.SetConsoleUserRolesResponse(user=console_mapping.console_user(user))
