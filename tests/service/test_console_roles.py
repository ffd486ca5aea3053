"""Console roles (the probe's F1): a console analyst may search, view
customers and decide reviews, but every admin-only route answers 403
ADMIN_REQUIRED, at the gateway and again at kyc-tier from its own record of
the user (a token naming a console user but no roles), with nothing changed;
an admin succeeds; internal API keys keep their access. Real kyc-tier (port
0, fake ports) behind the real gateway, on both databases."""

from __future__ import annotations

import base64
import re
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from gateway.routing import Route, RouteTable, build_routes
from identity_runtime import mesh
from identity_runtime.status import remote_error
from services.kyc_tier import console_models, models
from tests.service.test_console_auth import (  # noqa: F401 - the shared module fixtures
    Analyst,
    client,
    clock,
    database_url,
    kyc_tier,
    login,
    new_org,
    new_user,
    signed_in,
)
from tests.support import channel
from tests.support.contract_fields import fill_required
from tests.support.gateway import assert_error, bearer
from tests.support.kyc_fakes import rows
from tests.support.meshauth import caller_metadata

# The module fixtures this module shares with test_console_auth (one server each).
SHARED_FIXTURES = (client, clock, database_url, kyc_tier)
ROUTES = RouteTable(build_routes(), mesh.BY_PACKAGE)
ADMIN_ROUTES = sorted(
    (r for r in ROUTES if r.console_role == "admin"), key=lambda r: (r.full_name, r.verb)
)
# The tables a refused call could have changed (all but the audit outbox,
# checked on its own, and the sign-in's throttle and sessions).
_SKIPPED = {"audit_outbox", "console_sessions", "console_login_throttles"}


def _path(route: Route) -> str:
    return re.sub(r"\{[^}]+\}", "id_x1", route.path.openapi_path)


async def _send(who: Analyst, route: Route, body: dict[str, Any] | None = None) -> Any:
    headers = who.headers(csrf=route.verb != "GET")
    if route.verb in ("GET", "DELETE"):
        return await who.client.request(route.verb, _path(route), headers=headers)
    return await who.client.request(route.verb, _path(route), json=body or {}, headers=headers)


async def _snapshot(core: Any) -> dict[str, list[tuple[Any, ...]]]:
    def read(session: Any) -> dict[str, list[tuple[Any, ...]]]:
        tables = [t for t in models.Base.metadata.sorted_tables if t.name not in _SKIPPED]
        return {
            t.name: sorted(map(tuple, session.execute(select(t)).all()), key=repr) for t in tables
        }

    return await core.console_users.store.read(read)


def test_the_table_covers_the_probe_routes() -> None:
    names = {r.full_name.rsplit("/", 1)[1] for r in ADMIN_ROUTES}
    assert {
        "CreateApiKey",
        "ListApiKeys",
        "RevokeApiKey",
        "CreateConsoleUser",
        "SetConsolePolicy",
        "SetMatchThreshold",
        "SetDukcapilEvidenceSecret",
        "SetSdkOrigins",
        "CreateClient",
        "SetRetentionOverride",
        "SetLegalHold",
        "CreateWebhook",
        "EraseCustomer",
    } <= names


async def test_an_analyst_is_refused_every_admin_route_with_nothing_changed(
    database_url, client, kyc_tier
) -> None:
    org_id, _ = await new_org(database_url)
    analyst = await signed_in(client, database_url, org_id, "analyst")
    analyst_id = analyst.body["session"]["user"]["userId"]
    before = await _snapshot(kyc_tier.core)
    audited = await rows(kyc_tier.core, models.AuditOutbox, org_id=org_id)
    for route in ADMIN_ROUTES:
        response = await _send(analyst, route)
        body = assert_error(response, 403, "ADMIN_REQUIRED")
        assert analyst_id not in response.text and "@" not in body.get("message", "")
    assert await _snapshot(kyc_tier.core) == before
    # Refused at the gateway: kyc-tier saw none of them.
    after = await rows(kyc_tier.core, models.AuditOutbox, org_id=org_id)
    assert [e.id for e in after] == [e.id for e in audited]


async def test_kyc_tier_refuses_a_console_user_without_the_role_whatever_the_gateway_says(
    database_url, client, kyc_tier
) -> None:
    """A token the gateway signs for a console user carries no roles: kyc-tier
    reads the user's own record, refuses and audits the refusal."""
    org_id, key = await new_org(database_url)
    analyst = await signed_in(client, database_url, org_id, "analyst")
    analyst_id = analyst.body["session"]["user"]["userId"]
    admin = await signed_in(client, database_url, org_id, "admin")
    admin_id = admin.body["session"]["user"]["userId"]
    kyc_routes = [r for r in ADMIN_ROUTES if r.package == "kyc_tier"]
    assert len(kyc_routes) > 30
    before = await _snapshot(kyc_tier.core)
    async with channel(kyc_tier, credentials=False) as ch:

        async def call(route: Route, user_id: str, org: str = org_id) -> grpc.aio.AioRpcError:
            metadata = caller_metadata(
                org, scopes=("internal",), actor=f"console_user:{user_id}", issuer="gateway"
            )
            rpc = ch.unary_unary(
                route.rpc,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=route.response_class.FromString,
            )
            # A request the validation layer (which runs first) accepts.
            request = route.request_class()
            fill_required(request)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await rpc(request, metadata=metadata, timeout=10)
            return refused.value

        for route in kyc_routes:
            error = await call(route, analyst_id)
            remote = remote_error(error)
            assert (remote.code, remote.reason) == ("PERMISSION_DENIED", "ADMIN_REQUIRED"), route
            assert analyst_id not in (error.details() or "")
        assert await _snapshot(kyc_tier.core) == before
        # A user of another organisation, or one that does not exist, has no roles here.
        other_org, _ = await new_org(database_url)
        for user_id, org in ((admin_id, other_org), ("usr_nobody", org_id)):
            error = await call(kyc_routes[0], user_id, org)
            remote = remote_error(error)
            assert (remote.code, remote.reason) == ("UNAUTHENTICATED", "SESSION_INVALID")
        # An admin's token passes the role check on every one of them (each
        # RPC then answers on its own: made-up ids are not found, and so on).
        for route in kyc_routes:
            request = route.request_class()
            fill_required(request)
            rpc = ch.unary_unary(
                route.rpc,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=lambda b: b,
            )
            admin_metadata = caller_metadata(
                org_id, scopes=("internal",), actor=f"console_user:{admin_id}", issuer="gateway"
            )
            try:
                await rpc(request, metadata=admin_metadata, timeout=10)
            except grpc.aio.AioRpcError as error:
                remote = remote_error(error)
                assert remote.reason not in ("ADMIN_REQUIRED", "SESSION_INVALID"), route
                assert remote.code not in ("INTERNAL", "UNKNOWN"), (route, remote)
        metadata = caller_metadata(
            org_id, scopes=("internal",), actor=f"console_user:{admin_id}", issuer="gateway"
        )
        listed = ch.unary_unary(
            "/identity.kyc_tier.v1.ApiKeyService/ListApiKeys",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=lambda b: b,
        )
        from identity_platform_api.kyc_tier.v1 import api_keys_pb2

        await listed(api_keys_pb2.ListApiKeysRequest(), metadata=metadata, timeout=10)
    denied = await rows(kyc_tier.core, models.AuditOutbox, org_id=org_id, action="console.access")
    assert len(denied) == len(kyc_routes)
    assert {(e.actor, e.outcome) for e in denied} == {(f"console_user:{analyst_id}", "denied")}
    assert {e.details["required_role"] for e in denied} == {"admin"}
    assert key  # the organisation's own key is untouched


async def test_the_escalation_chain_stops_at_its_first_step(database_url, client, kyc_tier) -> None:
    org_id, _ = await new_org(database_url)
    analyst = await signed_in(client, database_url, org_id, "analyst")
    minted = await analyst.post(
        "/api/identity/api-keys", {"name": "analyst-made", "scopes": ["SCOPE_INTERNAL"]}
    )
    assert_error(minted, 403, "ADMIN_REQUIRED")
    assert "secret" not in minted.text
    keys = await rows(kyc_tier.core, models.ApiKey, org_id=org_id)
    assert [k.name for k in keys] != [] and "analyst-made" not in [k.name for k in keys]
    made = await analyst.post(
        "/api/identity/console-users",
        {
            "email": "escalated@bank.example",
            "displayName": "Escalated",
            "roles": ["admin"],
            "password": "correct horse battery",
        },
    )
    assert_error(made, 403, "ADMIN_REQUIRED")
    assert (
        await rows(kyc_tier.core, console_models.ConsoleUser, email="escalated@bank.example") == []
    )


async def test_an_analyst_keeps_the_console_routes(database_url, client, kyc_tier) -> None:
    org_id, key = await new_org(database_url)
    created = await client.post(
        "/api/customers", json={"externalId": "analyst-view-1"}, headers=bearer(key)
    )
    assert created.status_code == 200, created.text
    customer_id = created.json()["customer"]["customerId"]
    analyst = await signed_in(client, database_url, org_id, "analyst")
    for path in (
        "/api/auth/me",
        "/api/identity/search?q=analyst",
        f"/api/identity/customers/{customer_id}",
        f"/api/identity/kyc/{customer_id}",
        f"/api/identity/customers/{customer_id}/attempts",
        f"/api/identity/customers/{customer_id}/verifications",
        "/api/identity/attempts",
        "/api/identity/review-queue",
        f"/api/identity/tier-events?customerId={customer_id}",
        "/api/identity/webhooks",
        "/api/identity/export/customers.csv?createdAfter=2020-01-01T00:00:00Z"
        "&createdBefore=2020-06-01T00:00:00Z",
    ):
        response = await analyst.get(path)
        assert response.status_code == 200, (path, response.text)
    logout = await analyst.post("/api/auth/logout", {})
    assert logout.status_code == 200, logout.text


async def test_an_admin_and_an_internal_key_succeed_on_the_admin_routes(
    database_url, client, kyc_tier
) -> None:
    org_id, key = await new_org(database_url)
    admin = await signed_in(client, database_url, org_id, "admin")
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/api/identity/api-keys", None),
        ("GET", "/api/identity/org/settings", None),
        ("PUT", "/api/identity/org/settings/match-threshold", {"threshold": 0.45}),
        (
            "PUT",
            "/api/identity/org/settings/dukcapil-evidence-secret",
            {"secret": base64.b64encode(b"k" * 32).decode()},
        ),
        ("POST", "/api/identity/org/settings/dukcapil-evidence-secret/rotate", {}),
        ("PUT", "/api/identity/sdk-origins", {"origins": ["https://shop.example"]}),
        ("POST", "/api/identity/console-policy", {"passkeyRequired": False}),
        (
            "POST",
            "/api/identity/retention/overrides",
            {"dataClass": "verifications", "periodDays": 3650, "basis": "OJK"},
        ),
    ]
    for who in ("admin", "key"):
        for verb, path, body in calls:
            if who == "admin":
                response = await admin.client.request(
                    verb, path, json=body, headers=admin.headers(csrf=verb != "GET")
                )
            else:
                response = await client.request(verb, path, json=body, headers=bearer(key))
            assert response.status_code == 200, (who, path, response.text)

    async def admin_post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await admin.post(path, body)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    issued = await admin_post("/api/identity/api-keys", {"name": "k", "scopes": ["SCOPE_PUBLIC"]})
    await admin_post(f"/api/identity/api-keys/{issued['apiKey']['apiKeyId']}/revoke", {})
    await admin_post(
        "/api/identity/console-users",
        {
            "email": f"new-{org_id}@bank.example".lower(),
            "displayName": "New Analyst",
            "roles": ["analyst"],
            "password": "correct horse battery",
        },
    )
    customer = await admin_post("/api/customers", {"externalId": "admin-made-1"})
    customer_id = customer["customer"]["customerId"]
    hold = f"/api/identity/customers/{customer_id}/legal-hold"
    await admin_post(hold, {"hold": True, "reason": "litigation"})
    await admin_post(hold, {"hold": False, "reason": "settled"})
    hook = await admin_post(
        "/api/identity/webhooks",
        {"url": "https://partner.example/hooks", "events": ["kyc.tier_changed"]},
    )
    hook_id = hook["webhook"]["webhookId"]
    await admin_post(f"/api/identity/webhooks/{hook_id}/disable", {})
    await admin_post(f"/api/identity/webhooks/{hook_id}/enable", {})
    deleted = await admin.client.delete(
        f"/api/identity/webhooks/{hook_id}", headers=admin.headers()
    )
    assert deleted.status_code == 200, deleted.text
    await admin_post(f"/api/identity/customers/{customer_id}/erase", {})
