"""Console roles in the contracts (identity_runtime.console_roles): every
route a console session can reach states the role it needs, the admin-only
routes are the ones the role model names, and an undeclared role means admin."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from gateway.openapi import build_document
from gateway.openapi_errors import operation_errors
from gateway.routing import RouteTable, build_routes
from identity_platform_api.common.v1 import options_pb2
from identity_runtime import console_roles, mesh
from identity_runtime.descriptors import services
from identity_runtime.errors import PermissionDenied

pytestmark = pytest.mark.unit

ROUTES = RouteTable(build_routes(), mesh.BY_PACKAGE)

# What an analyst does (docs/console.md): search, the customer page, the
# review queue and its decisions, tier events, exports, the read-only webhook
# view, and their own session and passkeys. Everything else a console session
# can reach is for admins.
ANALYST_RPCS = {
    "identity.kyc_tier.v1.DashboardService/SearchCustomers",
    "identity.kyc_tier.v1.DashboardService/ListReviewQueue",
    "identity.kyc_tier.v1.DashboardService/DecideReview",
    "identity.kyc_tier.v1.DashboardService/GetReviewPortrait",
    "identity.kyc_tier.v1.DashboardService/ListCustomerVerifications",
    "identity.kyc_tier.v1.DashboardService/ListTierEvents",
    "identity.kyc_tier.v1.DashboardService/StreamCustomersCsv",
    "identity.kyc_tier.v1.DashboardService/StreamVerificationsCsv",
    "identity.kyc_tier.v1.ConsoleAuthService/Logout",
    "identity.kyc_tier.v1.ConsoleAuthService/GetMe",
    "identity.kyc_tier.v1.ConsoleAuthService/BeginPasskeyRegistration",
    "identity.kyc_tier.v1.ConsoleAuthService/FinishPasskeyRegistration",
    "identity.kyc_tier.v1.CustomerService/GetCustomer",
    "identity.kyc_tier.v1.AttemptService/ListAttempts",
    "identity.kyc_tier.v1.AttemptService/ListCustomerAttempts",
    "identity.kyc_tier.v1.KycService/GetKycStatus",
    "identity.kyc_tier.v1.WebhookService/ListWebhooks",
    "identity.kyc_tier.v1.WebhookService/ListWebhookDeliveries",
}
# The probe's F1: each of these was open to an analyst.
MUST_BE_ADMIN = {
    "identity.kyc_tier.v1.ApiKeyService/ListApiKeys",
    "identity.kyc_tier.v1.ApiKeyService/CreateApiKey",
    "identity.kyc_tier.v1.ApiKeyService/RevokeApiKey",
    "identity.face_match.v1.OAuthService/CreateClient",
    "identity.face_match.v1.OAuthService/RevokeClient",
    "identity.kyc_tier.v1.ConsoleAuthService/CreateConsoleUser",
    "identity.kyc_tier.v1.ConsoleAuthService/SetConsolePolicy",
    "identity.kyc_tier.v1.OrgSettingsService/GetOrgSettings",
    "identity.kyc_tier.v1.OrgSettingsService/SetMatchThreshold",
    "identity.kyc_tier.v1.OrgSettingsService/SetDukcapilEvidenceSecret",
    "identity.kyc_tier.v1.OrgSettingsService/RotateDukcapilEvidenceSecret",
    "identity.kyc_tier.v1.OrgSettingsService/SetDefaultWebhook",
    "identity.kyc_tier.v1.SdkSessionService/SetSdkOrigins",
    "identity.kyc_tier.v1.CustomerService/SetRetentionOverride",
    "identity.kyc_tier.v1.CustomerService/SetLegalHold",
    "identity.kyc_tier.v1.CustomerService/EraseCustomer",
    "identity.kyc_tier.v1.WebhookService/CreateWebhook",
    "identity.kyc_tier.v1.WebhookService/UpdateWebhook",
    "identity.kyc_tier.v1.WebhookService/DeleteWebhook",
}


def _console_methods():
    return [
        method
        for service in services()
        for method in service.methods
        if console_roles.reaches_console(method)
    ]


def test_every_route_a_console_session_reaches_declares_its_role():
    methods = _console_methods()
    assert len(methods) > 50
    undeclared = [m.full_name for m in methods if not console_roles.declared_role(m)]
    assert undeclared == [], "declare (identity.common.v1.access).console_role"


def test_the_analyst_routes_are_exactly_what_an_analyst_does():
    analyst = {
        f"{m.containing_service.full_name}/{m.name}"
        for m in _console_methods()
        if console_roles.required_role(m) == console_roles.ANALYST
    }
    assert analyst == ANALYST_RPCS
    routes = {route.full_name: route for route in ROUTES}
    for name in MUST_BE_ADMIN:
        assert routes[name].console_role == "admin", name


def test_an_undeclared_role_means_admin_and_unreachable_rpcs_need_none():
    method = next(m for m in _console_methods() if m.name == "CreateApiKey")
    proto = descriptor_pb2.FileDescriptorProto()
    method.containing_service.file.CopyToProto(proto)
    service = next(s for s in proto.service if s.name == method.containing_service.name)
    rpc = next(m for m in service.method if m.name == "CreateApiKey")
    rpc.options.Extensions[options_pb2.access].ClearField("console_role")
    pool = descriptor_pool.DescriptorPool()
    for dependency in method.containing_service.file.dependencies:
        _add_with_dependencies(pool, dependency)
    built = pool.Add(proto)
    assert built is not None
    stripped = pool.FindMethodByName(method.full_name)
    assert console_roles.declared_role(stripped) == ""
    assert console_roles.required_role(stripped) == console_roles.ADMIN
    login = next(m for s in services() for m in s.methods if m.name == "Login")
    authenticate = next(m for s in services() for m in s.methods if m.name == "AuthenticateSession")
    assert console_roles.required_role(login) == ""
    assert console_roles.required_role(authenticate) == ""


def _add_with_dependencies(pool: descriptor_pool.DescriptorPool, file) -> None:
    try:
        pool.FindFileByName(file.name)
        return
    except KeyError:
        pass
    for dependency in file.dependencies:
        _add_with_dependencies(pool, dependency)
    proto = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(proto)
    pool.Add(proto)


@pytest.mark.parametrize(
    ("roles", "required", "allowed"),
    [
        (("analyst",), "analyst", True),
        (("admin",), "analyst", True),
        (("analyst", "admin"), "admin", True),
        (("admin",), "admin", True),
        (("analyst",), "admin", False),
        ((), "analyst", False),
        ((), "admin", False),
        (("analyst",), "", True),
    ],
)
def test_roles_hold_the_required_role(roles, required, allowed):
    assert console_roles.holds(roles, required) is allowed
    if allowed:
        console_roles.check(roles, required)
    else:
        with pytest.raises(PermissionDenied) as refused:
            console_roles.check(roles, required)
        assert refused.value.reason == "ADMIN_REQUIRED"


def test_the_openapi_document_states_the_role_and_admin_required():
    document = build_document(ROUTES)
    operations = {
        op["description"].rsplit("gRPC: `", 1)[1].rstrip("`."): op
        for path in document["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "description" in op and "gRPC: `" in op["description"]
    }
    create_key = operations["identity.kyc_tier.v1.ApiKeyService/CreateApiKey"]
    assert create_key["x-identity-console-role"] == "admin"
    assert "ADMIN_REQUIRED" in create_key["responses"]["403"]["x-identity-reasons"]
    search = operations["identity.kyc_tier.v1.DashboardService/SearchCustomers"]
    assert search["x-identity-console-role"] == "analyst"
    assert "ADMIN_REQUIRED" not in str(search["responses"].get("403", {}))
    for route in ROUTES:
        admin_required = ("PERMISSION_DENIED", "ADMIN_REQUIRED") in operation_errors(route)
        assert admin_required is (route.console_role == "admin"), route.full_name
