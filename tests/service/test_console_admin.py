"""Console users managed by their admins (the probe's F7): list, disable
(every session ends at once; no sign-in after) and set roles, through the
REST gateway and the CLI, on both databases; refusals: an analyst, an
unknown user, another organisation's user, the organisation's last admin."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update

from identity_cli.main import main as identity_main
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
from tests.support import unique_name
from tests.support.gateway import assert_error, bearer
from tests.support.kyc_fakes import rows

SHARED_FIXTURES = (client, clock, database_url, kyc_tier)
USERS = "/api/identity/console-users"


def _user_id(who: Analyst) -> str:
    return who.body["session"]["user"]["userId"]


async def test_an_admin_disables_a_user_whose_sessions_end_at_once(
    database_url, client, kyc_tier
) -> None:
    org_id, _ = await new_org(database_url)
    admin = await signed_in(client, database_url, org_id, "admin")
    email = await new_user(database_url, org_id, "analyst")
    first = Analyst(client, await login(client, email))
    second = Analyst(client, await login(client, email))
    analyst_id = _user_id(first)
    assert (await first.get("/api/auth/me")).status_code == 200

    disabled = await admin.post(f"{USERS}/{analyst_id}/disable", {})
    assert disabled.status_code == 200, disabled.text
    body = disabled.json()
    assert body["sessionsRevoked"] == 2 and body["user"]["disabledAt"]
    for session in (first, second):
        assert_error(await session.get("/api/auth/me"), 401, "SESSION_INVALID")
    assert_error(await login(client, email), 401, "CREDENTIALS_INVALID")
    # An off-boarded user's attempt is audited under them (probe 6, D4).
    attempts = await rows(
        kyc_tier.core,
        models.AuditOutbox,
        action="console.login",
        subject=f"console_user:{analyst_id}",
    )
    assert [(a.outcome, a.details.get("user_disabled")) for a in attempts][-1] == ("denied", "true")
    again = await admin.post(f"{USERS}/{analyst_id}/disable", {})
    assert again.status_code == 200 and again.json()["sessionsRevoked"] == 0

    listed = await admin.get(USERS)
    assert listed.status_code == 200, listed.text
    by_id = {u["userId"]: u for u in listed.json()["users"]}
    assert by_id[analyst_id]["disabledAt"] and "disabledAt" not in by_id[_user_id(admin)]
    stored = await rows(kyc_tier.core, console_models.ConsoleUser, user_id=analyst_id)
    assert stored[0].disabled_at is not None
    sessions = await rows(kyc_tier.core, console_models.ConsoleSession, user_id=analyst_id)
    assert len(sessions) == 2 and all(s.revoked_at is not None for s in sessions)
    audits = await rows(
        kyc_tier.core, models.AuditOutbox, org_id=org_id, action="console_user.disable"
    )
    assert [(a.actor, a.subject, a.details["sessions_revoked"]) for a in audits] == [
        (f"console_user:{_user_id(admin)}", f"console_user:{analyst_id}", "2")
    ]


SITE = "https://onboarding.bank.example"


async def _minted_by_an_admin(client, database_url) -> tuple[Analyst, Analyst, str, str]:
    """(the org's first admin, a second admin, the token the second minted, the
    capture route it opens): the token works from the organisation's SDK origin."""
    org_id, secret = await new_org(database_url)
    first = await signed_in(client, database_url, org_id, "admin")
    second = await signed_in(client, database_url, org_id, "admin")
    origins = await client.put(
        "/api/identity/sdk-origins", json={"origins": [SITE]}, headers=bearer(secret)
    )
    assert origins.status_code == 200, origins.text
    body = {"externalId": unique_name("ext"), "fullName": "Siti Rahayu", "nik": "3273024107950003"}
    created = await client.post("/api/customers", json=body, headers=bearer(secret))
    assert created.status_code == 200, created.text
    customer_id = created.json()["customer"]["customerId"]
    minted = await second.post("/api/identity/sdk-sessions", {"customerId": customer_id})
    assert minted.status_code == 200, minted.text
    route = f"/api/identity/kyc/{customer_id}"
    token = minted.json()["token"]
    assert (await client.get(route, headers=_browser(token))).status_code == 200
    return first, second, token, route


def _browser(token: str) -> dict[str, str]:
    return {**bearer(token), "Origin": SITE}


async def test_disabling_an_admin_ends_the_sdk_sessions_they_minted(
    database_url, client, kyc_tier
) -> None:
    first, second, token, route = await _minted_by_an_admin(client, database_url)
    second_id = _user_id(second)

    disabled = await first.post(f"{USERS}/{second_id}/disable", {})
    assert disabled.status_code == 200, disabled.text

    assert_error(await client.get(route, headers=_browser(token)), 401, "SDK_SESSION_INVALID")
    minted = await rows(kyc_tier.core, models.SdkSession, created_by=f"console_user:{second_id}")
    assert len(minted) == 1 and minted[0].revoked_at is not None
    (entry,) = await rows(
        kyc_tier.core,
        models.AuditOutbox,
        action="console_user.disable",
        subject=f"console_user:{second_id}",
    )
    assert entry.details == {"sessions_revoked": "1", "sdk_sessions_revoked": "1"}


async def test_a_session_minted_by_a_user_disabled_earlier_is_refused(
    database_url, client, kyc_tier
) -> None:
    """Disabled before disabling ended their SDK sessions: the session is
    refused because its minter is."""
    _, second, token, route = await _minted_by_an_admin(client, database_url)
    await kyc_tier.core.database.run(
        lambda s: s.execute(
            update(console_models.ConsoleUser)
            .where(console_models.ConsoleUser.user_id == _user_id(second))
            .values(disabled_at=datetime.now(UTC))
        )
    )
    assert_error(await client.get(route, headers=_browser(token)), 401, "SDK_SESSION_INVALID")


async def test_an_admin_sets_roles_which_hold_from_the_next_call(
    database_url, client, kyc_tier
) -> None:
    org_id, key = await new_org(database_url)
    admin = await signed_in(client, database_url, org_id, "admin")
    analyst = await signed_in(client, database_url, org_id, "analyst")
    analyst_id = _user_id(analyst)
    assert_error(await analyst.get("/api/identity/api-keys"), 403, "ADMIN_REQUIRED")
    promoted = await admin.post(f"{USERS}/{analyst_id}/roles", {"roles": ["admin", "analyst"]})
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["user"]["roles"] == ["admin", "analyst"]
    assert (await analyst.get("/api/identity/api-keys")).status_code == 200
    # An internal key may change roles too.
    demoted = await client.post(
        f"{USERS}/{analyst_id}/roles", json={"roles": ["analyst"]}, headers=bearer(key)
    )
    assert demoted.status_code == 200, demoted.text
    assert_error(await analyst.get("/api/identity/api-keys"), 403, "ADMIN_REQUIRED")
    assert_error(
        await admin.post(f"{USERS}/{analyst_id}/roles", {"roles": ["owner"]}), 400, "INVALID_FIELD"
    )
    audits = await rows(
        kyc_tier.core, models.AuditOutbox, org_id=org_id, action="console_user.roles"
    )
    assert [(a.details["previous_roles"], a.details["roles"]) for a in audits] == [
        ("analyst", "admin,analyst"),
        ("admin,analyst", "analyst"),
    ]


async def test_refusals_change_nothing(database_url, client, kyc_tier) -> None:
    org_id, _ = await new_org(database_url)
    admin = await signed_in(client, database_url, org_id, "admin")
    admin_id = _user_id(admin)
    analyst = await signed_in(client, database_url, org_id, "analyst")
    analyst_id = _user_id(analyst)
    other_org, _ = await new_org(database_url)
    stranger = await signed_in(client, database_url, other_org, "analyst")
    stranger_id = _user_id(stranger)

    async def refused(who: Analyst, path: str, body: dict[str, Any], status: int, reason: str):
        return assert_error(await who.post(path, body), status, reason)

    await refused(analyst, f"{USERS}/{admin_id}/disable", {}, 403, "ADMIN_REQUIRED")
    await refused(
        analyst, f"{USERS}/{analyst_id}/roles", {"roles": ["admin"]}, 403, "ADMIN_REQUIRED"
    )
    assert_error(await analyst.get(USERS), 403, "ADMIN_REQUIRED")
    await refused(admin, f"{USERS}/usr_unknown/disable", {}, 404, "CONSOLE_USER_NOT_FOUND")
    await refused(admin, f"{USERS}/{stranger_id}/disable", {}, 404, "CONSOLE_USER_NOT_FOUND")
    await refused(
        admin, f"{USERS}/{stranger_id}/roles", {"roles": ["admin"]}, 404, "CONSOLE_USER_NOT_FOUND"
    )
    # The organisation's only admin can neither leave nor be demoted.
    await refused(admin, f"{USERS}/{admin_id}/disable", {}, 400, "LAST_ADMIN")
    await refused(admin, f"{USERS}/{admin_id}/roles", {"roles": ["analyst"]}, 400, "LAST_ADMIN")
    assert (await stranger.get("/api/auth/me")).status_code == 200
    assert (await admin.get("/api/auth/me")).status_code == 200
    stored = {
        u.user_id: (u.roles, u.disabled_at)
        for org in (org_id, other_org)
        for u in await rows(kyc_tier.core, console_models.ConsoleUser, org_id=org)
    }
    assert stored[admin_id] == (["admin"], None)
    assert stored[analyst_id] == (["analyst"], None)
    assert stored[stranger_id] == (["analyst"], None)
    for action in ("console_user.disable", "console_user.roles"):
        assert await rows(kyc_tier.core, models.AuditOutbox, org_id=org_id, action=action) == []
    # With a second admin, the first may step down.
    second = await signed_in(client, database_url, org_id, "admin")
    stepped = await admin.post(f"{USERS}/{admin_id}/roles", {"roles": ["analyst"]})
    assert stepped.status_code == 200, stepped.text
    await refused(second, f"{USERS}/{_user_id(second)}/disable", {}, 400, "LAST_ADMIN")


def _cli(*args: str) -> int:
    return identity_main(["console-users", *args])


async def test_the_cli_disables_and_sets_roles(database_url, client, kyc_tier, capsys) -> None:
    org_id, _ = await new_org(database_url)
    admin = await signed_in(client, database_url, org_id, "admin")
    analyst = await signed_in(client, database_url, org_id, "analyst")
    base = ["--database-url", database_url, "--org", org_id]
    user = ["--user", _user_id(analyst)]
    assert await asyncio.to_thread(_cli, "set-roles", *base, *user, "--role", "admin") == 0
    assert (await analyst.get("/api/identity/api-keys")).status_code == 200
    assert await asyncio.to_thread(_cli, "disable", *base, *user) == 0
    assert "1 session(s) ended" in capsys.readouterr().out
    assert_error(await analyst.get("/api/auth/me"), 401, "SESSION_INVALID")
    only_admin = ["--user", _user_id(admin)]
    assert await asyncio.to_thread(_cli, "disable", *base, *only_admin) != 0
    assert "no active console admin" in capsys.readouterr().err
    assert (await admin.get("/api/auth/me")).status_code == 200
    audits = await rows(
        kyc_tier.core, models.AuditOutbox, org_id=org_id, action="console_user.disable"
    )
    assert [a.actor for a in audits] == ["system:identity-cli"]
