"""Analyst console sign-in through the REST gateway, on both databases:
console users (CLI and admin route), argon2id passwords, backoff and
lockout, server-side sessions in HttpOnly SameSite=Strict cookies, CSRF on
state-changing routes, logout, expiry, and the audit entries of each.
kyc-tier is served on port 0 with fake ports and a manual clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from identity_cli.main import main as identity_main
from identity_cli.schema import migrate_all
from identity_store.db import Database
from services.kyc_tier import console_models, models
from services.kyc_tier.bootstrap import build
from services.kyc_tier.retention import KycSweeper
from services.kyc_tier.service import SPEC
from tests.support import cli_errors, kyc_tier_env, start_service, unique_name
from tests.support.gateway import (
    assert_documented,
    assert_error,
    bearer,
    console_reachable_routes,
    create_org_and_key,
    gateway_client,
    gateway_settings,
)
from tests.support.kyc_fakes import KycFakes, assert_audit_entries_acceptable, rows
from tests.support.mesh import postgres_schema

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "postgres":
        with postgres_schema() as url:
            yield url
        return
    url = f"sqlite:///{tmp_path_factory.mktemp('console') / 'identity.db'}"
    migrate_all(url)
    yield url


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
async def kyc_tier(database_url: str, clock: Clock):
    fakes = KycFakes()

    async def build_with_fakes(settings: Any) -> Any:
        return await build(settings, overrides=fakes.overrides(clock=clock))

    server = await start_service(
        dataclasses.replace(SPEC, build=build_with_fakes), kyc_tier_env(database_url)
    )
    yield server
    await server.stop(0)


@pytest.fixture(scope="module")
async def client(kyc_tier):
    async with gateway_client(gateway_settings({"kyc_tier": kyc_tier.address})) as http:
        yield http


def create_user(
    database_url: str, org_id: str, email: str, *roles: str, password: str = PASSWORD
) -> int:
    args = ["console-users", "create", "--database-url", database_url, "--org", org_id]
    args += ["--email", email, "--name", "Dewi Lestari", "--password-stdin"]
    for role in roles:
        args += ["--role", role]
    stdin = __import__("sys").stdin
    try:
        __import__("sys").stdin = io.StringIO(password + "\n")
        return identity_main(args)
    finally:
        __import__("sys").stdin = stdin


async def new_org(database_url: str, *scopes: str) -> tuple[str, str]:
    org_id, _, secret = await asyncio.to_thread(
        create_org_and_key, database_url, unique_name("Org"), scopes or ("internal",)
    )
    return org_id, secret


async def new_user(database_url: str, org_id: str, *roles: str) -> str:
    email = f"{unique_name('analyst').lower()}@bank.example"
    assert await asyncio.to_thread(create_user, database_url, org_id, email, *roles) == 0
    return email


def cookies_of(response: httpx.Response) -> dict[str, str]:
    """name -> the whole Set-Cookie value."""
    return {v.split("=", 1)[0]: v for v in response.headers.get_list("set-cookie")}


class Analyst:
    """A browser-like client: the session cookie and the CSRF token."""

    def __init__(self, client: httpx.AsyncClient, response: httpx.Response):
        assert response.status_code == 200, response.text
        self.client = client
        cookies = cookies_of(response)
        self.session = cookies["identity_session"].split(";")[0].split("=", 1)[1]
        self.csrf = response.json()["session"]["csrfToken"]
        self.body = response.json()

    def headers(self, csrf: bool = True) -> dict[str, str]:
        headers = {"Cookie": f"identity_session={self.session}"}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        return headers

    async def get(self, path: str) -> httpx.Response:
        return await self.client.get(path, headers=self.headers(csrf=False))

    async def post(self, path: str, body: dict[str, Any], csrf: bool = True) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.headers(csrf))


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> Any:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def signed_in(client: httpx.AsyncClient, database_url: str, org_id: str, *roles: str):
    email = await new_user(database_url, org_id, *roles)
    return Analyst(client, await login(client, email))


async def test_login_opens_a_session_in_strict_http_only_cookies(database_url, client, kyc_tier):
    org_id, _ = await new_org(database_url)
    email = await new_user(database_url, org_id)
    response = await login(client, email.upper())  # emails are case-insensitive
    assert response.status_code == 200, response.text
    session = response.json()["session"]
    assert session["token"] == ""  # only in the HttpOnly cookie
    assert session["user"]["orgId"] == org_id and session["user"]["roles"] == ["analyst"]
    cookies = cookies_of(response)
    sid = cookies["identity_session"]
    assert sid.startswith("identity_session=ics_")
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert attribute in sid
    csrf = cookies["identity_csrf"]
    assert "HttpOnly" not in csrf and "Secure" in csrf and "SameSite=Strict" in csrf
    assert csrf.split(";")[0] == f"identity_csrf={session['csrfToken']}"
    assert response.headers["cache-control"] == "no-store"

    analyst = Analyst(client, response)
    me = await analyst.get("/api/auth/me")
    assert me.status_code == 200, me.text
    assert me.json()["user"]["userId"] == session["user"]["userId"]
    user_id = session["user"]["userId"]
    core = kyc_tier.core
    entries = await rows(core, models.AuditOutbox, action="console.login", org_id=org_id)
    assert [(e.actor, e.outcome) for e in entries] == [(f"console_user:{user_id}", "success")]
    stored = await rows(core, console_models.ConsoleUser, user_id=user_id)
    assert stored[0].password_hash.startswith("$argon2id$")
    sessions = await rows(core, console_models.ConsoleSession, user_id=user_id)
    assert len(sessions) == 1 and sessions[0].token_hash != sid  # only a keyed hash is kept
    await assert_audit_entries_acceptable(core)


async def test_cookies_are_not_secure_on_plain_http_to_localhost_only(database_url, client):
    org_id, _ = await new_org(database_url)
    email = await new_user(database_url, org_id)
    local = await client.post(
        "http://localhost:8080/api/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert local.status_code == 200
    assert "Secure" not in cookies_of(local)["identity_session"]
    remote = await client.post(
        "http://console.bank.example/api/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert "Secure" in cookies_of(remote)["identity_session"]


async def test_wrong_password_and_unknown_email_are_refused_alike(database_url, client, kyc_tier):
    org_id, _ = await new_org(database_url)
    email = await new_user(database_url, org_id)
    wrong = await login(client, email, "not the password at all")
    unknown = await login(client, f"{unique_name('nobody').lower()}@bank.example")
    for response in (wrong, unknown):
        error = assert_error(response, 401, "CREDENTIALS_INVALID")
        assert_documented(response)
        assert email not in response.text and "set-cookie" not in response.headers
        assert error["message"] == "wrong email or password"
    assert_error(await login(client, "", ""), 401, "CREDENTIALS_INVALID")
    failures = await rows(
        kyc_tier.core, models.AuditOutbox, action="console.login", outcome="denied"
    )
    assert any(e.org_id == org_id for e in failures)


async def test_failed_logins_back_off_then_lock_the_account(
    database_url, client, kyc_tier, clock
) -> None:
    org_id, _ = await new_org(database_url)
    email = await new_user(database_url, org_id)
    assert_error(await login(client, email, "wrong password!"), 401, "CREDENTIALS_INVALID")
    assert_error(await login(client, email, "wrong password!"), 401, "CREDENTIALS_INVALID")
    # After 2 failures in a row the next attempt waits 2 s: even the right password.
    backoff_answer = await login(client, email)
    backoff = assert_error(backoff_answer, 429, "RATE_LIMITED")
    assert backoff["metadata"]["retry_after_seconds"] == "2"
    assert_documented(backoff_answer)
    clock.advance(2)
    assert_error(await login(client, email, "wrong password!"), 401, "CREDENTIALS_INVALID")
    backoff = assert_error(await login(client, email), 429, "RATE_LIMITED")
    assert backoff["metadata"]["retry_after_seconds"] == "4"
    clock.advance(4)
    assert_error(await login(client, email, "wrong password!"), 401, "CREDENTIALS_INVALID")
    clock.advance(8)
    # The fifth failure in a row locks the account for the lockout period.
    assert_error(await login(client, email, "wrong password!"), 401, "CREDENTIALS_INVALID")
    locked_answer = await login(client, email)
    locked = assert_error(locked_answer, 429, "ACCOUNT_LOCKED")
    assert locked["metadata"]["retry_after_seconds"] == "900"
    assert_documented(locked_answer)
    clock.advance(899)
    assert_error(await login(client, email), 429, "ACCOUNT_LOCKED")
    clock.advance(1)
    assert (await login(client, email)).status_code == 200
    entries = sorted(
        await rows(kyc_tier.core, models.AuditOutbox, action="console.login", org_id=org_id),
        key=lambda e: e.id,
    )
    assert [e.outcome for e in entries] == ["denied"] * 5 + ["success"]
    assert entries[4].details.get("locked") == "true"


async def test_state_changing_requests_with_the_cookie_need_the_csrf_token(
    database_url, client
) -> None:
    org_id, _ = await new_org(database_url)
    analyst = await signed_in(client, database_url, org_id)
    assert_error(await analyst.post("/api/auth/logout", {}, csrf=False), 403, "CSRF_INVALID")
    forged = await client.post(
        "/api/auth/logout",
        json={},
        headers={"Cookie": f"identity_session={analyst.session}", "X-CSRF-Token": "guess"},
    )
    assert_error(forged, 403, "CSRF_INVALID")
    # The session survived the refused requests.
    assert (await analyst.get("/api/auth/me")).status_code == 200


async def test_logout_revokes_the_session_and_clears_the_cookies(
    database_url, client, kyc_tier
) -> None:
    org_id, _ = await new_org(database_url)
    analyst = await signed_in(client, database_url, org_id)
    response = await analyst.post("/api/auth/logout", {})
    assert response.status_code == 200, response.text
    cleared = cookies_of(response)
    assert cleared["identity_session"].startswith("identity_session=;")
    assert "Max-Age=0" in cleared["identity_session"]
    assert_error(await analyst.get("/api/auth/me"), 401, "SESSION_INVALID")
    user_id = analyst.body["session"]["user"]["userId"]
    entries = await rows(kyc_tier.core, models.AuditOutbox, action="console.logout")
    assert [e.actor for e in entries if e.org_id == org_id] == [f"console_user:{user_id}"]


async def test_a_session_expires(database_url, client, clock) -> None:
    org_id, _ = await new_org(database_url)
    analyst = await signed_in(client, database_url, org_id)
    clock.advance(8 * 3600 - 1)
    assert (await analyst.get("/api/auth/me")).status_code == 200
    clock.advance(1)
    assert_error(await analyst.get("/api/auth/me"), 401, "SESSION_INVALID")


async def test_unknown_session_cookies_are_refused(client) -> None:
    for cookie in ("identity_session=ics_forged", "identity_session=x" * 3):
        response = await client.get("/api/auth/me", headers={"Cookie": cookie})
        assert_error(response, 401, "SESSION_INVALID")
    assert_error(await client.get("/api/auth/me"), 401, "API_KEY_MISSING")


async def test_me_and_logout_with_an_api_key_name_no_session(database_url, client) -> None:
    _, secret = await new_org(database_url)
    assert_error(await client.get("/api/auth/me", headers=bearer(secret)), 400, "SESSION_REQUIRED")
    response = await client.post("/api/auth/logout", json={}, headers=bearer(secret))
    assert_error(response, 400, "SESSION_REQUIRED")


async def test_admins_and_internal_keys_create_console_users_analysts_cannot(
    database_url, client, kyc_tier
) -> None:
    org_id, internal = await new_org(database_url)
    admin = await signed_in(client, database_url, org_id, "admin")
    analyst = await signed_in(client, database_url, org_id)
    body = {
        "email": f"{unique_name('new').lower()}@bank.example",
        "displayName": "Budi Santoso",
        "roles": ["analyst"],
        "password": "another long password",
    }
    created = await admin.post("/api/identity/console-users", body)
    assert created.status_code == 200, created.text
    user = created.json()["user"]
    assert user["orgId"] == org_id and user["roles"] == ["analyst"]
    assert (await login(client, body["email"], body["password"])).status_code == 200
    assert_error(await admin.post("/api/identity/console-users", body), 409, "CONSOLE_USER_EXISTS")
    refused = await analyst.post(
        "/api/identity/console-users", {**body, "email": "x" + body["email"]}
    )
    assert_error(refused, 403, "ADMIN_REQUIRED")
    assert_error(
        await admin.post("/api/identity/console-users", body, csrf=False), 403, "CSRF_INVALID"
    )
    by_key = await client.post(
        "/api/identity/console-users",
        json={**body, "email": "k" + body["email"]},
        headers=bearer(internal),
    )
    assert by_key.status_code == 200, by_key.text
    _, public = await new_org(database_url, "public")
    assert_error(
        await client.post("/api/identity/console-users", json=body, headers=bearer(public)),
        403,
        "SCOPE_INSUFFICIENT",
    )
    for field, value in (("roles", ["root"]), ("password", "short"), ("email", "not-an-email")):
        error = assert_error(
            await admin.post("/api/identity/console-users", {**body, field: value}),
            400,
            "INVALID_FIELD",
        )
        assert error["metadata"]["field"] == field
    entries = await rows(kyc_tier.core, models.AuditOutbox, action="console_user.create")
    admin_id = admin.body["session"]["user"]["userId"]
    assert any(e.actor == f"console_user:{admin_id}" for e in entries)


async def test_an_admin_can_require_passkeys_for_the_organisation(
    database_url, client, kyc_tier, clock
) -> None:
    org_id, internal = await new_org(database_url)
    admin = await signed_in(client, database_url, org_id, "admin")
    analyst = await signed_in(client, database_url, org_id)
    email = await new_user(database_url, org_id)
    path = "/api/identity/console-policy"
    assert_error(await analyst.post(path, {"passkeyRequired": True}), 403, "ADMIN_REQUIRED")
    assert_error(await admin.post(path, {"passkeyRequired": True}, csrf=False), 403, "CSRF_INVALID")
    opened = Analyst(client, await login(client, email))  # not required yet
    assert (await opened.get("/api/auth/me")).status_code == 200
    response = await admin.post(path, {"passkeyRequired": True})
    assert response.status_code == 200, response.text
    assert response.json() == {"passkeyRequired": True}
    # The password sessions end (the admin's own too); a right password now
    # answers exactly as a wrong one (no password oracle).
    for session in (opened, analyst, admin):
        assert_error(await session.get("/api/auth/me"), 401, "SESSION_INVALID")
    right = assert_error(await login(client, email), 401, "CREDENTIALS_INVALID")
    wrong = assert_error(
        await login(client, email, "wrong password xyz"), 401, "CREDENTIALS_INVALID"
    )
    assert right["message"] == wrong["message"]
    assert right.get("metadata", {}) == wrong.get("metadata", {})
    policy = await rows(kyc_tier.core, models.AuditOutbox, action="console.policy", org_id=org_id)
    assert [e.details.get("password_sessions_revoked") for e in policy] == ["3"]
    # Another organisation's users are not affected.
    other_org, _ = await new_org(database_url)
    assert (await login(client, await new_user(database_url, other_org))).status_code == 200
    lifted = await client.post(path, json={"passkeyRequired": False}, headers=bearer(internal))
    assert lifted.status_code == 200, lifted.text
    # Two failures counted, like wrong passwords: the next attempt waits.
    assert_error(await login(client, email), 429, "RATE_LIMITED")
    clock.advance(60)
    assert (await login(client, email)).status_code == 200
    _, public = await new_org(database_url, "public")
    refused = await client.post(path, json={"passkeyRequired": True}, headers=bearer(public))
    assert_error(refused, 403, "SCOPE_INSUFFICIENT")
    entries = await rows(kyc_tier.core, models.AuditOutbox, action="console.policy", org_id=org_id)
    admin_id = admin.body["session"]["user"]["userId"]
    assert [e.actor for e in sorted(entries, key=lambda e: e.id)][0] == f"console_user:{admin_id}"


def test_cli_refuses_bad_users_in_one_line(database_url, capsys) -> None:
    org_id, _, _ = create_org_and_key(database_url, unique_name("Org"), ("public",))
    assert create_user(database_url, org_id, "bad-email") == 2
    assert create_user(database_url, org_id, "ok@bank.example", password="short") == 2
    assert create_user(database_url, "org_missing", "ok2@bank.example") == 2
    err = cli_errors(capsys.readouterr().err)
    assert len(err) == 3 and all(line.startswith("identity console-users create:") for line in err)
    assert Database  # the CLI opens and disposes its own database


# --- the sign-in throttle is per email address, known or not -------------------


@contextlib.asynccontextmanager
async def own_gateway(kyc_tier: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway of its own: its per-address sign-in budget (30 a minute) is
    not shared with the other tests' attempts."""
    async with gateway_client(gateway_settings({"kyc_tier": kyc_tier.address})) as http:
        yield http


def unknown_email() -> str:
    return f"{unique_name('nobody').lower()}@bank.example"


async def answer(client: httpx.AsyncClient, email: str, password: str) -> tuple[Any, ...]:
    """What a prober sees of one attempt (all but the request id)."""
    response = await login(client, email, password)
    assert email not in response.text  # never echoed
    if response.status_code == 200:
        return (200,)
    error = dict(response.json()["error"])
    del error["requestId"]
    return (response.status_code, response.headers.get("retry-after"), sorted(error.items()))


async def guessing_run(kyc_tier: Any, clock: Clock, email: str) -> list[tuple[Any, ...]]:
    """Wrong passwords through backoff and lockout, with the right password
    tried whenever the throttle holds it back."""
    wrong, seen = "wrong password!", []
    async with own_gateway(kyc_tier) as client:
        for password, wait in (
            (wrong, 0),
            (wrong, 0),
            (PASSWORD, 0),  # backoff: 2 s
            (PASSWORD, 1),
            (wrong, 1),
            (PASSWORD, 0),  # backoff: 4 s
            (wrong, 4),
            (PASSWORD, 0),  # backoff: 8 s
            (wrong, 8),
            (PASSWORD, 0),  # locked: 900 s
            (wrong, 899),
        ):
            clock.advance(wait)
            seen.append(await answer(client, email, password))
    return seen


async def test_known_and_unknown_emails_are_throttled_alike(database_url, kyc_tier, clock) -> None:
    org_id, _ = await new_org(database_url)
    known = await new_user(database_url, org_id)
    known_run = await guessing_run(kyc_tier, clock, known)
    unknown_run = await guessing_run(kyc_tier, clock, unknown_email())
    assert known_run == unknown_run
    statuses = [(a[0], dict(a[2])["reason"]) for a in known_run]
    assert statuses == [
        (401, "CREDENTIALS_INVALID"),
        (401, "CREDENTIALS_INVALID"),
        (429, "RATE_LIMITED"),
        (429, "RATE_LIMITED"),
        (401, "CREDENTIALS_INVALID"),
        (429, "RATE_LIMITED"),
        (401, "CREDENTIALS_INVALID"),
        (429, "RATE_LIMITED"),
        (401, "CREDENTIALS_INVALID"),
        (429, "ACCOUNT_LOCKED"),
        (429, "ACCOUNT_LOCKED"),
    ]
    assert [
        dict(a[2])["metadata"].get("retry_after_seconds") for a in known_run if a[0] == 429
    ] == [
        "2",
        "1",
        "4",
        "8",
        "900",
        "1",
    ]
    clock.advance(1)
    async with own_gateway(kyc_tier) as client:
        assert (await login(client, known)).status_code == 200
    # The known user's failures are audited under the user, as before.
    entries = await rows(
        kyc_tier.core, models.AuditOutbox, action="console.login", org_id=org_id, outcome="denied"
    )
    assert len(entries) == 5


async def test_a_password_sign_in_clears_the_throttle(database_url, kyc_tier, clock) -> None:
    org_id, _ = await new_org(database_url)
    email = await new_user(database_url, org_id)
    async with own_gateway(kyc_tier) as client:
        for _ in range(2):
            assert_error(await login(client, email, "wrong password!"), 401, "CREDENTIALS_INVALID")
        assert_error(await login(client, email), 429, "RATE_LIMITED")
        clock.advance(2)
        assert (await login(client, email)).status_code == 200
        # The count starts again: one failure is no reason to wait.
        assert_error(await login(client, email, "wrong password!"), 401, "CREDENTIALS_INVALID")
        assert (await login(client, email)).status_code == 200
    assert (
        await rows(
            kyc_tier.core,
            console_models.ConsoleLoginThrottle,
            email_digest=digest_of(kyc_tier, email),
        )
        == []
    )


async def test_failures_are_forgotten_a_lockout_window_after_the_last(
    database_url, kyc_tier, clock
) -> None:
    org_id, _ = await new_org(database_url)
    for email, quiet, then in (
        (await new_user(database_url, org_id), 900, "RATE_LIMITED"),  # forgotten: 2 failures
        (unknown_email(), 899, "ACCOUNT_LOCKED"),  # remembered: the 5th failure locks
    ):
        async with own_gateway(kyc_tier) as client:
            for wait in (0, 0, 2, 4):
                clock.advance(wait)
                assert_error(
                    await login(client, email, "wrong password"), 401, "CREDENTIALS_INVALID"
                )
            clock.advance(quiet)
            for _ in range(2 if then == "RATE_LIMITED" else 1):
                assert_error(
                    await login(client, email, "wrong password"), 401, "CREDENTIALS_INVALID"
                )
            assert_error(await login(client, email, "wrong password"), 429, then)


def digest_of(kyc_tier: Any, email: str) -> str:
    return kyc_tier.core.console.throttle.digest(email)


async def test_the_throttle_stores_a_keyed_digest_only(kyc_tier) -> None:
    email = unknown_email()
    async with own_gateway(kyc_tier) as client:
        assert_error(
            await login(client, email.upper(), "wrong password"), 401, "CREDENTIALS_INVALID"
        )
    throttle = console_models.ConsoleLoginThrottle
    (row,) = await rows(kyc_tier.core, throttle, email_digest=digest_of(kyc_tier, email))
    assert row.failures == 1 and len(row.email_digest) == 64
    local_part = email.split("@")[0]
    for stored in await rows(kyc_tier.core, throttle):
        assert local_part not in repr(vars(stored)).lower()


async def test_the_retention_sweep_purges_forgotten_throttle_rows(kyc_tier, clock) -> None:
    key = digest_of(kyc_tier, unknown_email())
    throttle = console_models.ConsoleLoginThrottle
    now = clock()
    await kyc_tier.core.database.run(
        lambda s: kyc_tier.core.console.throttle.record_failure(s, key, now)
    )
    sweeper = KycSweeper(kyc_tier.core.database, clock)
    clock.advance(899)
    await asyncio.to_thread(sweeper.sweep)
    assert await rows(kyc_tier.core, throttle, email_digest=key)
    clock.advance(1)  # a lockout window after the last failure
    await asyncio.to_thread(sweeper.sweep)
    assert sweeper.platform_counts["console_login_throttles"] >= 1
    assert await rows(kyc_tier.core, throttle, email_digest=key) == []


async def test_concurrent_failures_are_each_counted(kyc_tier, clock) -> None:
    throttle, database = kyc_tier.core.console.throttle, kyc_tier.core.database
    key = throttle.digest(unknown_email())
    now = clock()

    def fail(session: Any) -> Any:
        return throttle.record_failure(session, key, now)

    counted = await asyncio.gather(*(database.run(fail) for _ in range(4)))
    assert sorted(d["failures"] for d in counted) == [1, 2, 3, 4]
    (row,) = await rows(kyc_tier.core, console_models.ConsoleLoginThrottle, email_digest=key)
    assert row.failures == 4


async def test_a_passkey_signs_in_while_the_password_is_locked(
    database_url, kyc_tier, clock
) -> None:
    from tests.service.test_console_passkeys import begin_auth, finish_auth, registered

    async with own_gateway(kyc_tier) as client:
        _, email, authenticator = await registered(client, database_url)
        for wait in (0, 0, 2, 4, 8):  # someone else locks the password out
            clock.advance(wait)
            assert_error(await login(client, email, "wrong password"), 401, "CREDENTIALS_INVALID")
        assert_error(await login(client, email), 429, "ACCOUNT_LOCKED")
        ceremony = await begin_auth(client, email)
        response = await finish_auth(
            client, ceremony["ceremonyId"], authenticator.get(ceremony["optionsJson"])
        )
        assert response.status_code == 200, response.text
        # The password stays locked: a passkey does not lift the throttle.
        assert_error(await login(client, email), 429, "ACCOUNT_LOCKED")


# --- every route a console session reaches documents the session's refusals ----


async def test_every_console_route_documents_its_session_and_csrf_refusals(
    database_url, kyc_tier
) -> None:
    org_id, _ = await new_org(database_url)
    async with own_gateway(kyc_tier) as http:
        admin = await signed_in(http, database_url, org_id, "admin")
        routes = console_reachable_routes()
        assert len(routes) > 20
        for verb, path in routes:
            bogus = await http.request(verb, path, headers={"Cookie": "identity_session=ics_x"})
            assert_error(bogus, 401, "SESSION_INVALID")
            assert_documented(bogus)
            if verb == "GET":
                continue
            for headers in (admin.headers(csrf=False), {**admin.headers(), "X-CSRF-Token": "x"}):
                refused = await http.request(verb, path, headers=headers)
                assert_error(refused, 403, "CSRF_INVALID")
                assert_documented(refused)
        # The refusals left the session as it was.
        assert (await admin.get("/api/auth/me")).status_code == 200
