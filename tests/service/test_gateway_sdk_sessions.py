"""Browser-safe SDK access through the real gateway, on both databases (issue 18):
kyc-tier (fake model ports) on port 0, the gateway in front. A partner mints a
single-customer SDK session token; the token opens only that customer's
capture routes, only from the organisation's SDK origins (CORS), until it is
revoked or expires. Also the `/sdk-demo` helper and `identity orgs set-sdk-origins`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from identity_capture.sdk import SdkSigner
from identity_cli.main import main as identity_main
from identity_cli.schema import migrate_all
from identity_runtime.errors import FailedPrecondition
from identity_store.db import Database
from services.kyc_tier import models
from services.kyc_tier.bootstrap import build
from services.kyc_tier.service import SPEC
from tests.service.test_kyc_idempotency import b64, step_up_body
from tests.support import kyc_tier_env, start_service, unique_name
from tests.support.gateway import (
    add_key,
    assert_documented,
    assert_error,
    bearer,
    create_org_and_key,
    gateway_client,
    gateway_settings,
)
from tests.support.kyc_fakes import KycFakes, assert_acceptable_to_audit, rows
from tests.support.mesh import postgres_schema

NIK = "3273024107950003"
SITE = "https://onboarding.bank.example"
ELSEWHERE = "https://evil.example"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization",
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "postgres":
        with postgres_schema() as url:
            yield url
        return
    url = f"sqlite:///{tmp_path_factory.mktemp('sdk-sessions') / 'identity.db'}"
    migrate_all(url)
    yield url


@pytest.fixture(scope="module")
async def kyc_tier(database_url: str):
    fakes = KycFakes()

    async def build_with_fakes(settings: Any) -> Any:
        return await build(settings, overrides=fakes.overrides())

    server = await start_service(
        dataclasses.replace(SPEC, build=build_with_fakes), kyc_tier_env(database_url)
    )
    yield server
    await server.stop(0)


@pytest.fixture(scope="module")
async def partner(database_url: str, kyc_tier: Any, tmp_path_factory: pytest.TempPathFactory):
    """An organisation with an internal key (also the demo's key) and SITE as SDK origin."""
    org_id, _, secret = await asyncio.to_thread(
        create_org_and_key, database_url, unique_name("Bank"), ("public", "internal")
    )
    key_file = tmp_path_factory.mktemp("demo") / "api-key"
    key_file.write_text(secret + "\n")
    settings = gateway_settings(
        {"kyc_tier": kyc_tier.address}, sdk_demo="true", sdk_demo_api_key_file=str(key_file)
    )
    async with gateway_client(settings) as http:
        partner = Partner(http, secret, org_id, kyc_tier.core)
        set_origins = await partner.call("PUT", "/api/identity/sdk-origins", {"origins": [SITE]})
        assert set_origins.status_code == 200, set_origins.text
        yield partner


class Partner:
    def __init__(self, http: Any, secret: str, org_id: str, core: Any):
        self.http = http
        self.core = core
        self.headers = bearer(secret)
        self.org_id = org_id

    async def call(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        return await self.http.request(method, path, json=body, headers={**self.headers, **headers})

    async def customer(self) -> str:
        body = {"externalId": unique_name("ext"), "fullName": "Siti Rahayu", "nik": NIK}
        created = await self.call("POST", "/api/customers", body)
        assert created.status_code == 200, created.text
        return str(created.json()["customer"]["customerId"])

    async def session(self, customer_id: str, ttl: int = 0) -> dict[str, Any]:
        body = {"customerId": customer_id, "ttlSeconds": ttl}
        minted = await self.call("POST", "/api/identity/sdk-sessions", body)
        assert minted.status_code == 200, minted.text
        return dict(minted.json())


def as_browser(token: str, origin: str | None = SITE) -> dict[str, str]:
    return {**bearer(token), **({"Origin": origin} if origin else {})}


def register_body(customer_id: str) -> dict[str, str]:
    signer = SdkSigner()
    return {
        "customerId": customer_id,
        "deviceId": signer.device_id,
        "algorithm": "KEY_ALGORITHM_ECDSA_P256_SHA256",
        "publicKeyPem": signer.public_key_pem().decode(),
        "platform": "web",
    }


async def test_a_token_opens_its_customers_capture_routes_from_the_sdk_origin(partner) -> None:
    customer_id = await partner.customer()
    minted = await partner.session(customer_id)
    token = minted["token"]
    assert token.startswith("sdk_") and minted["session"]["customerId"] == customer_id
    expires = datetime.fromisoformat(minted["session"]["expiresAt"].replace("Z", "+00:00"))
    assert expires - datetime.now(UTC) <= timedelta(minutes=15)

    http = partner.http
    registered = await http.post(
        "/api/identity/devices/register", json=register_body(customer_id), headers=as_browser(token)
    )
    assert registered.status_code == 200, registered.text
    assert registered.headers["access-control-allow-origin"] == SITE
    assert registered.headers["vary"] == "Origin"
    challenge = await http.post(
        "/api/identity/face/flash-challenge",
        json={"customerId": customer_id, "purpose": "CHALLENGE_PURPOSE_FACE_LIVENESS"},
        headers=as_browser(token),
    )
    assert challenge.status_code == 200, challenge.text
    status = await http.get(f"/api/identity/kyc/{customer_id}", headers=as_browser(token, None))
    assert status.status_code == 200 and "access-control-allow-origin" not in status.headers
    # The gateway's own pages (/sdk-demo) are same-origin: no list needed, no CORS.
    own = await http.get(
        f"/api/identity/kyc/{customer_id}", headers=as_browser(token, "http://gateway.test")
    )
    assert own.status_code == 200 and "access-control-allow-origin" not in own.headers
    assert registered.json()["customerId"] == customer_id
    # What the session did reaches the audit chain under its own actor (probe5 P5-3).
    queued = await rows_of(
        partner, models.AuditOutbox, actor=f"sdk_session:{minted['session']['sessionId']}"
    )
    assert {"device.register", "challenge.issue"} <= {e.action for e in queued}
    assert_acceptable_to_audit(queued)


async def test_a_token_is_held_to_its_customer_its_routes_and_its_origins(partner) -> None:
    mine, other = await partner.customer(), await partner.customer()
    token = (await partner.session(mine))["token"]
    http = partner.http
    theirs = await http.get(f"/api/identity/kyc/{other}", headers=as_browser(token))
    error = assert_error(theirs, 403, "SDK_SESSION_CUSTOMER_MISMATCH")
    assert_documented(theirs)
    # The refusal is readable by the page (its origin is allowed).
    assert theirs.headers["access-control-allow-origin"] == SITE
    assert "cus_" not in error["message"]
    register_other = await http.post(
        "/api/identity/devices/register", json=register_body(other), headers=as_browser(token)
    )
    assert_error(register_other, 403, "SDK_SESSION_CUSTOMER_MISMATCH")

    for method, path, body in [
        ("GET", "/api/customers", None),
        ("GET", f"/api/identity/customers/{mine}/attempts", None),
        ("POST", "/api/identity/sdk-sessions", {"customerId": mine}),
        ("POST", "/api/identity/face/match", {"customerId": mine}),
        ("GET", "/api/healthz", None),
        # Internal routes too: refused as an SDK token, not for the scope
        # (whose challenge would invite the page to get an internal one).
        ("GET", "/api/identity/api-keys", None),
        ("GET", "/api/auth/me", None),
    ]:
        response = await http.request(method, path, json=body, headers=as_browser(token))
        error = assert_error(response, 403, "SDK_SESSION_ROUTE_FORBIDDEN")
        assert_documented(response)
        assert "WWW-Authenticate" not in response.headers, (path, error)
    # The OpenAPI document reads no credential: public documentation, as to anyone.
    assert (await http.get("/api/openapi.json", headers=as_browser(token))).status_code == 200

    elsewhere = await http.post(
        "/api/identity/devices/register",
        json=register_body(mine),
        headers=as_browser(token, ELSEWHERE),
    )
    assert_error(elsewhere, 403, "ORIGIN_NOT_ALLOWED")
    assert_documented(elsewhere)
    assert "access-control-allow-origin" not in elsewhere.headers


async def test_preflights_are_answered_for_sdk_routes_and_sdk_origins_only(partner) -> None:
    http = partner.http
    allowed = await http.options(
        "/api/identity/document/ktp/capture", headers={"Origin": SITE, **PREFLIGHT}
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SITE
    assert allowed.headers["access-control-allow-methods"] == "POST"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers
    for origin, path in [
        (ELSEWHERE, "/api/identity/document/ktp/capture"),
        (SITE, "/api/customers"),
        (SITE, "/api/identity/sdk-sessions"),
    ]:
        refused = await http.options(path, headers={"Origin": origin, **PREFLIGHT})
        assert_error(refused, 403, "ORIGIN_NOT_ALLOWED")
        assert "access-control-allow-origin" not in refused.headers
    # An API key's answers never carry CORS headers, whatever the origin.
    keyed = await partner.call("GET", "/api/customers", Origin=SITE)
    assert keyed.status_code == 200 and "access-control-allow-origin" not in keyed.headers


async def test_revoked_expired_and_malformed_tokens_are_refused(partner, database_url) -> None:
    customer_id = await partner.customer()
    http = partner.http
    minted = await partner.session(customer_id)
    session_id, token = minted["session"]["sessionId"], minted["token"]
    path = f"/api/identity/kyc/{customer_id}"
    assert (await http.get(path, headers=as_browser(token))).status_code == 200
    revoked = await partner.call("POST", f"/api/identity/sdk-sessions/{session_id}/revoke", {})
    assert revoked.status_code == 200 and revoked.json()["session"]["revokedAt"]
    again = await partner.call("POST", f"/api/identity/sdk-sessions/{session_id}/revoke", {})
    assert again.json()["session"]["revokedAt"] == revoked.json()["session"]["revokedAt"]
    refused = await http.get(path, headers=as_browser(token))
    assert_error(refused, 401, "SDK_SESSION_INVALID")
    assert_documented(refused)
    assert refused.headers["WWW-Authenticate"] == (
        'Bearer realm="identity-platform", error="invalid_token"'
    )
    # Refused on any route that reads a credential, the anonymous health too.
    health = await http.get("/api/healthz", headers=as_browser(token))
    assert_error(health, 401, "SDK_SESSION_INVALID")
    assert_documented(health)

    expiring = await partner.session(customer_id, ttl=60)
    await asyncio.to_thread(_expire, database_url, expiring["session"]["sessionId"])
    assert_error(
        await http.get(path, headers=as_browser(expiring["token"])), 401, "SDK_SESSION_INVALID"
    )
    for bad in ["sdk_short", "sdk_" + "a" * 32 + "!", "sdk_" + "b" * 32]:
        assert_error(await http.get(path, headers=as_browser(bad)), 401, "SDK_SESSION_INVALID")
    both = {**as_browser(minted["token"]), "X-Api-Key": "idk_" + "c" * 32}
    assert_error(await http.get(path, headers=both), 401, "SDK_SESSION_INVALID")
    audit = await rows_of(partner, models.AuditOutbox, action="sdk_session.revoke")
    assert [e.subject for e in audit if e.org_id == partner.org_id][-1] == f"customer:{customer_id}"


async def test_revoking_a_key_ends_the_sessions_it_minted(partner, database_url) -> None:
    """A key is revoked because it leaked: the sessions minted with it end with
    it (in the same transaction, counted in the audit entry); another key's do not."""
    customer_id = await partner.customer()
    http = partner.http
    path = f"/api/identity/kyc/{customer_id}"
    key_id, leaked = await asyncio.to_thread(add_key, database_url, partner.org_id, ("public",))
    minted = []
    for _ in range(2):
        made = await http.post(
            "/api/identity/sdk-sessions", json={"customerId": customer_id}, headers=bearer(leaked)
        )
        assert made.status_code == 200, made.text
        minted.append(made.json()["token"])
    kept = (await partner.session(customer_id))["token"]
    for token in [*minted, kept]:
        assert (await http.get(path, headers=as_browser(token))).status_code == 200

    revoked = await partner.call("POST", f"/api/identity/api-keys/{key_id}/revoke", {})
    assert revoked.status_code == 200, revoked.text
    for token in minted:
        assert_error(await http.get(path, headers=as_browser(token)), 401, "SDK_SESSION_INVALID")
    assert (await http.get(path, headers=as_browser(kept))).status_code == 200
    sessions = await rows_of(partner, models.SdkSession, created_by=f"api_key:{key_id}")
    assert len(sessions) == 2 and all(s.revoked_at is not None for s in sessions)
    audit = await rows_of(partner, models.AuditOutbox, action="api_key.revoke")
    entry = [e for e in audit if e.subject == f"api_key:{key_id}"]
    assert len(entry) == 1 and entry[0].details == {"sdk_sessions_revoked": "2"}


async def test_a_session_whose_minting_key_was_revoked_earlier_is_refused(
    partner, database_url
) -> None:
    """A key revoked before its sessions were ended with it (or by another
    path): the session is refused because its minting key is."""
    customer_id = await partner.customer()
    key_id, secret = await asyncio.to_thread(add_key, database_url, partner.org_id, ("public",))
    made = await partner.http.post(
        "/api/identity/sdk-sessions", json={"customerId": customer_id}, headers=bearer(secret)
    )
    assert made.status_code == 200, made.text
    token = made.json()["token"]
    path = f"/api/identity/kyc/{customer_id}"
    assert (await partner.http.get(path, headers=as_browser(token))).status_code == 200
    await asyncio.to_thread(_revoke_key_only, database_url, key_id)
    refused = await partner.http.get(path, headers=as_browser(token))
    assert_error(refused, 401, "SDK_SESSION_INVALID")


async def test_a_customer_at_the_device_limit_is_refused_with_a_409_and_audited(
    partner, monkeypatch
) -> None:
    """liveness refuses a device past the customer's limit; the partner sees
    409 DEVICE_LIMIT_REACHED, documented, and kyc-tier audits the refusal."""
    customer_id = await partner.customer()
    token = (await partner.session(customer_id))["token"]

    async def at_the_limit(*_: Any) -> Any:
        raise FailedPrecondition(
            "the customer registered 10 new devices in the last 24 hours, the most allowed",
            "DEVICE_LIMIT_REACHED",
            {"max_devices": "10", "retry_after_seconds": "3600"},
        )

    monkeypatch.setattr(partner.core.devices.liveness, "register_device", at_the_limit)
    body = register_body(customer_id)
    refused = await partner.http.post(
        "/api/identity/devices/register", json=body, headers=as_browser(token)
    )
    error = assert_error(refused, 409, "DEVICE_LIMIT_REACHED")
    assert error["metadata"]["max_devices"] == "10"
    assert_documented(refused)
    audit = await rows_of(partner, models.AuditOutbox, action="device.register")
    (denied,) = [e for e in audit if e.subject == f"customer:{customer_id}"]
    assert denied.outcome == "denied"
    assert denied.details == {"device_id": body["deviceId"], "reason": "DEVICE_LIMIT_REACHED"}


async def test_minting_and_origins_refuse_bad_input(partner, database_url) -> None:
    customer_id = await partner.customer()
    for body, status, reason in [
        ({"customerId": customer_id, "ttlSeconds": 901}, 400, "INVALID_FIELD"),
        ({"customerId": customer_id, "ttlSeconds": -1}, 400, "INVALID_FIELD"),
        ({"customerId": "cus_unknown"}, 404, "CUSTOMER_NOT_FOUND"),
        ({}, 400, "INVALID_FIELD"),
    ]:
        response = await partner.call("POST", "/api/identity/sdk-sessions", body)
        assert_error(response, status, reason)
    _, _, stranger = await asyncio.to_thread(
        create_org_and_key, database_url, unique_name("Other"), ("public",)
    )
    foreign = await partner.http.post(
        "/api/identity/sdk-sessions", json={"customerId": customer_id}, headers=bearer(stranger)
    )
    assert_error(foreign, 404, "CUSTOMER_NOT_FOUND")
    session_id = (await partner.session(customer_id))["session"]["sessionId"]
    not_theirs = await partner.http.post(
        f"/api/identity/sdk-sessions/{session_id}/revoke", json={}, headers=bearer(stranger)
    )
    assert_error(not_theirs, 404, "SDK_SESSION_NOT_FOUND")
    public_only = await partner.http.put(
        "/api/identity/sdk-origins", json={"origins": [SITE]}, headers=bearer(stranger)
    )
    assert_error(public_only, 403, "SCOPE_INSUFFICIENT")
    for origin in [
        "*",
        "https://a.example/path",
        "ftp://a.example",
        "https://a.example?x=1",
        "",
        # urlsplit raises ValueError on these (a 500 once).
        "http://[::1",
        "https://[zz]",
    ]:
        bad = await partner.call("PUT", "/api/identity/sdk-origins", {"origins": [SITE, origin]})
        assert_error(bad, 400, "INVALID_FIELD")
    kept = await partner.call(
        "PUT",
        "/api/identity/sdk-origins",
        {"origins": ["HTTPS://Onboarding.Bank.Example:443/", SITE]},
    )
    assert kept.status_code == 200, kept.text
    # Normalised as browsers send an Origin (lower case, no default port), once.
    assert kept.json()["origins"] == [SITE]


async def test_a_customers_sessions_are_listed_newest_first_page_by_page(
    partner, database_url
) -> None:
    """An operator finds a customer's sessions (open, expired, revoked, and
    who minted each) to revoke a leaked one; the tokens are never shown."""
    customer_id = await partner.customer()
    other_customer = await partner.customer()
    minted = [await partner.session(customer_id) for _ in range(3)]
    await partner.session(other_customer)
    first_id = minted[0]["session"]["sessionId"]
    revoked = await partner.call("POST", f"/api/identity/sdk-sessions/{first_id}/revoke", {})
    assert revoked.status_code == 200, revoked.text
    path = f"/api/identity/customers/{customer_id}/sdk-sessions"

    listed, token = [], ""
    while True:
        page = await partner.call("GET", f"{path}?pageSize=2&pageToken={token}")
        assert page.status_code == 200, page.text
        listed += page.json()["sdkSessions"]
        token = page.json().get("nextPageToken", "")
        if not token:
            break
    assert [s["sessionId"] for s in listed] == [m["session"]["sessionId"] for m in minted][::-1]
    by_id = {s["sessionId"]: s for s in listed}
    assert by_id[first_id]["revokedAt"] and "revokedAt" not in listed[0]
    key_actor = {
        s.created_by for s in await rows_of(partner, models.SdkSession, session_id=first_id)
    }
    assert {s["createdBy"] for s in listed} == key_actor and next(iter(key_actor)).startswith(
        "api_key:"
    )
    assert all("token" not in s for s in listed)


async def test_listing_sessions_refuses_bad_input_and_other_callers(partner, database_url) -> None:
    customer_id = await partner.customer()
    token = (await partner.session(customer_id))["token"]
    path = f"/api/identity/customers/{customer_id}/sdk-sessions"
    assert_error(
        await partner.call("GET", "/api/identity/customers/cus_unknown/sdk-sessions"),
        404,
        "CUSTOMER_NOT_FOUND",
    )
    for query in ["pageSize=-1", "pageToken=not-a-token"]:
        assert_error(await partner.call("GET", f"{path}?{query}"), 400, "INVALID_FIELD")
    _, _, stranger = await asyncio.to_thread(
        create_org_and_key, database_url, unique_name("Other"), ("public",)
    )
    foreign = await partner.http.get(path, headers=bearer(stranger))
    assert_error(foreign, 404, "CUSTOMER_NOT_FOUND")
    assert_documented(foreign)
    # The customer's own browser may not list (or learn of) other sessions.
    browser = await partner.http.get(path, headers=as_browser(token))
    assert_error(browser, 403, "SDK_SESSION_ROUTE_FORBIDDEN")


async def test_the_demo_mints_a_session_and_never_shows_the_key(partner) -> None:
    http = partner.http
    page = await http.get("/sdk-demo")
    assert (
        page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    )
    assert partner.headers["Authorization"].split()[1] not in page.text
    script = await http.get("/sdk-demo/demo.js")
    assert script.status_code == 200 and "idk_" not in script.text
    made = await http.post("/sdk-demo/session", json={"fullName": "Demo Dev", "nik": NIK})
    assert made.status_code == 200, made.text
    answer = made.json()
    assert set(answer) == {"customerId", "token", "expiresAt"}
    status = await http.get(
        f"/api/identity/kyc/{answer['customerId']}", headers=bearer(answer["token"])
    )
    assert status.status_code == 200 and status.json()["tier"] == "KYC_TIER_BASIC"
    assert_error(await http.get("/sdk-demo/session"), 405, "METHOD_NOT_ALLOWED")
    form = await http.post(
        "/sdk-demo/session", content=b"fullName=x", headers={"Content-Type": "text/plain"}
    )
    assert_error(form, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(
        await http.post(
            "/sdk-demo/session", content=b"[1]", headers={"Content-Type": "application/json"}
        ),
        400,
        "MALFORMED_REQUEST",
    )
    unauthenticated = await http.post("/sdk-demo/match", json={"livenessVerificationId": "ver_x"})
    assert_error(unauthenticated, 401, "SDK_SESSION_INVALID")
    assert (await http.get("/sdk-demo/nothing")).status_code == 404


async def test_the_demo_is_off_unless_turned_on(kyc_tier, partner) -> None:
    customer_id = await partner.customer()
    token = (await partner.session(customer_id))["token"]
    path = f"/api/identity/kyc/{customer_id}"
    async with gateway_client(gateway_settings({"kyc_tier": kyc_tier.address})) as http:
        assert_error(await http.get("/sdk-demo"), 404, "ROUTE_NOT_FOUND")
        # Without the demo page nothing is same-origin: a Host matching the
        # Origin (the client's own word, as a DNS-rebound page sends it) is no pass.
        for origin, host in [(ELSEWHERE, "evil.example"), ("http://gateway.test", None)]:
            headers = as_browser(token, origin) | ({"Host": host} if host else {})
            refused = await http.get(path, headers=headers)
            assert_error(refused, 403, "ORIGIN_NOT_ALLOWED")
        assert (await http.get(path, headers=as_browser(token))).status_code == 200
    # With the demo on, the gateway's own page still needs no listed origin.
    own = await partner.http.get(
        path, headers=as_browser(token, "http://gateway.test") | {"Host": "gateway.test"}
    )
    assert own.status_code == 200, own.text


def test_the_cli_sets_an_organisations_sdk_origins(database_url: str) -> None:
    org_id, _, _ = create_org_and_key(database_url, unique_name("Cli"), ("public",))
    base = ["orgs", "set-sdk-origins", "--database-url", database_url, "--org", org_id]
    assert identity_main([*base, "https://a.example", "http://localhost:3000"]) == 0
    database = Database(database_url)
    try:
        with database.transaction() as session:
            origins = [r.origin for r in session.query(models.SdkOrigin).filter_by(org_id=org_id)]
    finally:
        database.dispose()
    assert sorted(origins) == ["http://localhost:3000", "https://a.example"]
    assert identity_main([*base, "https://a.example/path"]) == 2
    assert (
        identity_main(
            ["orgs", "set-sdk-origins", "--database-url", database_url, "--org", "org_nope"]
        )
        == 2
    )


async def rows_of(partner: Partner, model: Any, **where: Any) -> list[Any]:
    return await rows(partner.core, model, **where)


def _write(database_url: str, statement: Any) -> None:
    database = Database(database_url)
    try:
        with database.transaction() as session:
            session.execute(statement)
    finally:
        database.dispose()


def _expire(database_url: str, session_id: str) -> None:
    _write(
        database_url,
        update(models.SdkSession)
        .where(models.SdkSession.session_id == session_id)
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)),
    )


def _revoke_key_only(database_url: str, api_key_id: str) -> None:
    """Revoke a key as the code before sessions were ended with it did."""
    _write(
        database_url,
        update(models.ApiKey)
        .where(models.ApiKey.api_key_id == api_key_id)
        .values(revoked_at=datetime.now(UTC)),
    )


def _raw_json(http: Any, path: str, text: str, headers: dict[str, str] | None = None) -> Any:
    """A POST of `text` as is: JSON escapes such as a lone \\ud800 reach the
    server undecoded (httpx's json= would refuse to encode one)."""
    return http.post(
        path, content=text.encode(), headers={**(headers or {}), "Content-Type": "application/json"}
    )


@pytest.mark.parametrize(
    ("path", "text"),
    [
        # Enum fields: building "expected one of" failed on the surrogate (a 500 once).
        ("/api/identity/face/flash-challenge", r'{"customerId":"cus_x","purpose":"\ud800"}'),
        ("/api/identity/devices/register", r'{"customerId":"cus_x","algorithm":"\ud800"}'),
        ("/api/identity/api-keys", r'{"name":"k","scopes":["\ud800"]}'),
        # An unknown key: the error body echoing it could not be encoded.
        ("/api/customers", r'{"\ud800":"x"}'),
        # A string field (refused before too).
        ("/api/customers", r'{"externalId":"e","fullName":"\ud800"}'),
    ],
)
async def test_a_lone_surrogate_anywhere_in_a_body_is_a_400(partner, path: str, text: str) -> None:
    response = await _raw_json(partner.http, path, text, partner.headers)
    assert_error(response, 400, "MALFORMED_REQUEST")


async def test_an_unknown_keys_echo_is_short_and_without_control_characters(partner) -> None:
    key = r"a\u0007b" + "x" * 1_000_000
    response = await _raw_json(partner.http, "/api/customers", f'{{"{key}":"x"}}', partner.headers)
    error = assert_error(response, 400, "MALFORMED_REQUEST")
    assert len(response.content) < 1000
    assert error["metadata"]["field"].startswith("a?bxxx")
    assert "\x07" not in response.text


async def test_the_demo_refuses_a_lone_surrogate_with_a_400(partner) -> None:
    text = r'{"fullName":"\ud800","nik":"' + NIK + '"}'
    response = await _raw_json(partner.http, "/sdk-demo/session", text)
    assert_error(response, 400, "MALFORMED_REQUEST")


async def test_a_nik_shaped_request_id_is_replaced_not_echoed(partner) -> None:
    response = await partner.http.get(
        "/api/identity/api-keys", headers={**partner.headers, "X-Request-Id": NIK}
    )
    assert response.headers["x-request-id"] != NIK
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    kept = await partner.http.get(
        "/api/identity/api-keys", headers={**partner.headers, "X-Request-Id": "partner-req-7"}
    )
    assert kept.headers["x-request-id"] == "partner-req-7"


async def test_a_token_steps_up_only_against_the_enrolled_reference(partner) -> None:
    """Probe5 finding 1: the browser sent its own photo as `referenceImage` and
    passed step-up. A token's reference image is 403, nothing written; the
    partner's backend may send one, and the answer names it."""
    customer_id = await partner.customer()
    token = (await partner.session(customer_id))["token"]
    own_face = {"data": b64(b"the browser's own photo")}
    body = step_up_body(customer_id, unique_name("nonce"), b"frame-0")
    refused = await partner.http.post(
        "/api/identity/auth/step-up",
        json={**body, "referenceImage": own_face},
        headers=as_browser(token),
    )
    error = assert_error(refused, 403, "REFERENCE_IMAGE_FORBIDDEN")
    assert error["metadata"]["field"] == "referenceImage"
    assert_documented(refused)
    assert await rows(partner.core, models.Attempt, customer_id=customer_id, kind="step_up") == []

    partner_image = {"data": b64(b"the partner's reference photo")}
    allowed = await partner.call(
        "POST", "/api/identity/auth/step-up", {**body, "referenceImage": partner_image}
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["referenceSource"] == "partner_image"
