"""Passkeys through the REST gateway, on PostgreSQL and SQLite, with a
software authenticator (tests.support.webauthn) and py_webauthn on the
server: registration by a signed-in analyst, sign-in without a password,
and the refusals: a replayed assertion, a wrong origin, a spent or expired
challenge, no user verification, a sign counter that did not grow.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from services.kyc_tier import console_models, models
from tests.service import test_console_auth as console_auth
from tests.service.test_console_auth import Analyst, cookies_of, login, new_org, new_user
from tests.support.gateway import assert_documented, bearer
from tests.support.gateway import assert_error as assert_error_only
from tests.support.kyc_fakes import assert_audit_entries_acceptable, rows
from tests.support.webauthn import SoftAuthenticator


def assert_error(response: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    """The refusal, and the OpenAPI document lists it for the route."""
    error = assert_error_only(response, status, reason)
    assert_documented(response)
    return error


# The sign-in tests' fixtures: kyc-tier on each database, a manual clock, the gateway.
database_url = console_auth.database_url
clock = console_auth.clock
kyc_tier = console_auth.kyc_tier
client = console_auth.client


async def registered(client: httpx.AsyncClient, database_url: str) -> tuple[Analyst, str, Any]:
    org_id, _ = await new_org(database_url)
    email = await new_user(database_url, org_id)
    analyst = Analyst(client, await login(client, email))
    authenticator = SoftAuthenticator()
    begin = await analyst.post("/api/auth/webauthn/register/begin", {})
    assert begin.status_code == 200, begin.text
    options = json.loads(begin.json()["optionsJson"])
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["rp"]["id"] == "localhost"
    finish = await analyst.post(
        "/api/auth/webauthn/register/finish",
        {
            "credentialJson": authenticator.create(begin.json()["optionsJson"]),
            "passkeyName": "laptop",
        },
    )
    assert finish.status_code == 200, finish.text
    assert finish.json()["passkeyId"].startswith("pky_")
    return analyst, email, authenticator


async def begin_auth(client: httpx.AsyncClient, email: str = "") -> dict[str, Any]:
    response = await client.post("/api/auth/webauthn/auth/begin", json={"email": email})
    assert response.status_code == 200, response.text
    return response.json()


async def finish_auth(client: httpx.AsyncClient, ceremony_id: str, credential: str) -> Any:
    return await client.post(
        "/api/auth/webauthn/auth/finish",
        json={"ceremonyId": ceremony_id, "credentialJson": credential},
    )


async def test_a_registered_passkey_signs_in_without_a_password(
    database_url, client, kyc_tier
) -> None:
    analyst, email, authenticator = await registered(client, database_url)
    me = await analyst.get("/api/auth/me")
    assert me.json()["user"]["passkeyCount"] == 1
    ceremony = await begin_auth(client, email)
    options = json.loads(ceremony["optionsJson"])
    # The same options as for an email nobody has (only the challenge differs):
    # listing the user's credentials would tell which emails are console users.
    unknown = json.loads((await begin_auth(client, "nobody@example.com"))["optionsJson"])
    assert options.pop("challenge") != unknown.pop("challenge")
    assert options == unknown
    assert options["userVerification"] == "required" and options.get("allowCredentials", []) == []
    response = await finish_auth(
        client, ceremony["ceremonyId"], authenticator.get(ceremony["optionsJson"])
    )
    assert response.status_code == 200, response.text
    assert response.json()["session"]["token"] == ""
    assert "HttpOnly" in cookies_of(response)["identity_session"]
    signed_in = Analyst(client, response)
    assert (await signed_in.get("/api/auth/me")).json()["user"]["email"] == email
    # Discoverable: no email needed.
    anonymous = await begin_auth(client)
    assert json.loads(anonymous["optionsJson"]).get("allowCredentials", []) == []
    again = await finish_auth(
        client, anonymous["ceremonyId"], authenticator.get(anonymous["optionsJson"])
    )
    assert again.status_code == 200, again.text
    user_id = me.json()["user"]["userId"]
    logins = await rows(
        kyc_tier.core, models.AuditOutbox, action="console.login", actor=f"console_user:{user_id}"
    )
    assert [e.details["method"] for e in sorted(logins, key=lambda e: e.id)] == [
        "password",
        "passkey",
        "passkey",
    ]
    (stored,) = await rows(kyc_tier.core, console_models.ConsolePasskey, user_id=user_id)
    assert stored.sign_count == 2
    await assert_audit_entries_acceptable(kyc_tier.core)


async def test_a_replayed_assertion_is_refused(database_url, client) -> None:
    _, email, authenticator = await registered(client, database_url)
    ceremony = await begin_auth(client, email)
    assertion = authenticator.get(ceremony["optionsJson"])
    assert (await finish_auth(client, ceremony["ceremonyId"], assertion)).status_code == 200
    # The same ceremony again: its challenge is spent.
    assert_error(
        await finish_auth(client, ceremony["ceremonyId"], assertion), 401, "PASSKEY_INVALID"
    )
    # A fresh ceremony with the old assertion: the challenge does not match.
    fresh = await begin_auth(client, email)
    assert_error(await finish_auth(client, fresh["ceremonyId"], assertion), 401, "PASSKEY_INVALID")


async def test_a_wrong_origin_is_refused(database_url, client) -> None:
    analyst, email, authenticator = await registered(client, database_url)
    ceremony = await begin_auth(client, email)
    phished = authenticator.get(ceremony["optionsJson"], origin="https://console.evil.example")
    assert_error(await finish_auth(client, ceremony["ceremonyId"], phished), 401, "PASSKEY_INVALID")
    begin = await analyst.post("/api/auth/webauthn/register/begin", {})
    other = SoftAuthenticator()
    response = await analyst.post(
        "/api/auth/webauthn/register/finish",
        {
            "credentialJson": other.create(
                begin.json()["optionsJson"], origin="https://evil.example"
            )
        },
    )
    assert_error(response, 401, "PASSKEY_INVALID")
    # The session is fine, the passkey is refused: the console's challenge, no error.
    assert response.headers["www-authenticate"] == (
        'Cookie realm="identity-platform", cookie-name="identity_session", '
        'form-action="/api/auth/login"'
    )


async def test_user_verification_and_a_growing_counter_are_required(database_url, client) -> None:
    _, email, authenticator = await registered(client, database_url)
    authenticator.user_verified = False
    ceremony = await begin_auth(client, email)
    response = await finish_auth(
        client, ceremony["ceremonyId"], authenticator.get(ceremony["optionsJson"])
    )
    assert_error(response, 401, "PASSKEY_INVALID")
    authenticator.user_verified = True
    ceremony = await begin_auth(client, email)
    ok = await finish_auth(
        client, ceremony["ceremonyId"], authenticator.get(ceremony["optionsJson"])
    )
    assert ok.status_code == 200, ok.text
    authenticator.sign_count -= 2  # a clone that lags behind
    ceremony = await begin_auth(client, email)
    cloned = await finish_auth(
        client, ceremony["ceremonyId"], authenticator.get(ceremony["optionsJson"])
    )
    assert_error(cloned, 401, "PASSKEY_INVALID")


async def test_challenges_expire(database_url, client, clock) -> None:
    _, email, authenticator = await registered(client, database_url)
    ceremony = await begin_auth(client, email)
    clock.advance(301)
    response = await finish_auth(
        client, ceremony["ceremonyId"], authenticator.get(ceremony["optionsJson"])
    )
    assert_error(response, 401, "PASSKEY_INVALID")
    assert_error(
        await finish_auth(client, "cer_unknown", authenticator.get(ceremony["optionsJson"])),
        401,
        "PASSKEY_INVALID",
    )


async def test_registration_refusals(database_url, client) -> None:
    org_id, key = await new_org(database_url)
    email = await new_user(database_url, org_id)
    analyst = Analyst(client, await login(client, email))
    assert_error(
        await analyst.post("/api/auth/webauthn/register/begin", {}, csrf=False), 403, "CSRF_INVALID"
    )
    by_key = await client.post("/api/auth/webauthn/register/begin", json={}, headers=bearer(key))
    assert_error(by_key, 400, "SESSION_REQUIRED")
    for credential in ("", "{}", "not json", json.dumps({"response": {"clientDataJSON": "!!"}})):
        response = await analyst.post(
            "/api/auth/webauthn/register/finish", {"credentialJson": credential}
        )
        assert assert_error(response, 400, "INVALID_FIELD")["metadata"]["field"] == "credentialJson"
    # A credential for a challenge this user was never given.
    stranger = SoftAuthenticator().create(
        json.dumps({"rp": {"id": "localhost"}, "user": {"id": "dXNy"}, "challenge": "AAAA"})
    )
    response = await analyst.post(
        "/api/auth/webauthn/register/finish", {"credentialJson": stranger}
    )
    assert_error(response, 401, "PASSKEY_INVALID")
    assert_error(await client.post("/api/auth/webauthn/auth/finish", json={}), 400, "INVALID_FIELD")


async def test_an_organisation_that_requires_passkeys_refuses_passwords_only(
    database_url, client, kyc_tier
) -> None:
    analyst, email, authenticator = await registered(client, database_url)
    org_id = analyst.body["session"]["user"]["orgId"]

    def require(session: Any) -> None:
        session.add(console_models.ConsolePolicy(org_id=org_id, passkey_required=True))

    await kyc_tier.core.database.run(require)  # as POST /api/identity/console-policy does
    # As a wrong password, whatever the password.
    assert_error(await login(client, email), 401, "CREDENTIALS_INVALID")
    ceremony = await begin_auth(client, email)
    response = await finish_auth(
        client, ceremony["ceremonyId"], authenticator.get(ceremony["optionsJson"])
    )
    assert response.status_code == 200, response.text
    by_passkey = Analyst(client, response)
    # Requiring passkeys (again, as the API does) ends password sessions only.
    await kyc_tier.core.console_users.set_policy(org_id, True)
    assert (await by_passkey.get("/api/auth/me")).status_code == 200
    assert_error(await analyst.get("/api/auth/me"), 401, "SESSION_INVALID")
