"""Revoking an OAuth client ends its access tokens on every gateway replica
within the revocation check, as revoking an API key does (black-box probe
F5: they kept working until they expired, up to 5 minutes). Real kyc-tier
and face-match servers on port 0 and one database, two real gateways in
front, each with a manual clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.gateway import (
    assert_error,
    assert_token_error,
    bearer,
    create_org_and_key,
    gateway_client,
    gateway_settings,
)
from tests.support.kyc_and_face_match import with_kyc_tier
from tests.support.mesh import module_database

CUSTOMERS = "/api/customers?pageSize=1"
NIK = "3273024107950003"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    yield from module_database(request.param, tmp_path_factory.mktemp("oauth-revocation"))


@pytest.fixture(scope="module")
async def servers(database_url: str, tmp_path_factory: pytest.TempPathFactory):
    async with with_kyc_tier(database_url, tmp_path_factory.mktemp("oauth-bucket")) as addresses:
        yield addresses


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def new_client(client: Any, admin_key: str, name: str) -> tuple[str, str]:
    """(client id, client secret) of a new OAuth client of the key's organisation."""
    made = await client.post("/api/oauth/clients", json={"name": name}, headers=bearer(admin_key))
    assert made.status_code == 200, made.text
    return made.json()["client"]["clientId"], made.json()["clientSecret"]


async def issue(client: Any, client_id: str, secret: str) -> Any:
    return await client.post(
        "/api/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
        },
    )


async def token_for(client: Any, client_id: str, secret: str) -> str:
    issued = await issue(client, client_id, secret)
    assert issued.status_code == 200, issued.text
    return issued.json()["access_token"]


async def test_a_revoked_clients_tokens_are_refused_by_every_replica_within_a_second(
    database_url: str, servers: dict[str, str]
) -> None:
    """Two replicas caching for 30 s: a client revoked through one has its
    tokens refused by both once their revocation check (1 s) comes due; the
    organisation's other client keeps working."""
    _, _, admin = await asyncio.to_thread(
        create_org_and_key, database_url, "OAuth Revocation Org", ("public", "internal")
    )
    clock = ManualClock()
    settings = gateway_settings(servers)
    async with gateway_client(settings) as first, gateway_client(settings) as second:
        for replica in (first, second):
            replica.gateway.oauth_clients._clock = clock
        revoked_id, revoked_secret = await new_client(first, admin, "leaked backend")
        kept_id, kept_secret = await new_client(first, admin, "other backend")
        revoked_token = await token_for(first, revoked_id, revoked_secret)
        kept_token = await token_for(first, kept_id, kept_secret)
        # Before: both tokens open public routes on both replicas.
        for replica in (first, second):
            for token in (revoked_token, kept_token):
                answer = await replica.get(CUSTOMERS, headers=bearer(token))
                assert answer.status_code == 200, answer.text
        revoked = await first.post(
            f"/api/oauth/clients/{revoked_id}/revoke", json={}, headers=bearer(admin)
        )
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["client"]["revokedAt"]
        clock.now += 1.0
        for replica in (first, second):
            for path in (CUSTOMERS, "/api/face-match/submissions/any-order"):
                refused = assert_error(
                    await replica.get(path, headers=bearer(revoked_token)),
                    401,
                    "ACCESS_TOKEN_REVOKED",
                )
                assert revoked_token not in str(refused)
            # The other client's token is unaffected.
            answer = await replica.get(CUSTOMERS, headers=bearer(kept_token))
            assert answer.status_code == 200, answer.text
        # No new token for the revoked client; a new one for the other still works.
        assert_token_error(
            await issue(second, revoked_id, revoked_secret),
            401,
            "invalid_client",
            "CLIENT_CREDENTIALS_INVALID",
        )
        fresh = await token_for(second, kept_id, kept_secret)
        assert (await first.get(CUSTOMERS, headers=bearer(fresh))).status_code == 200


async def test_a_token_is_refused_when_face_match_no_longer_knows_its_client(
    database_url: str, servers: dict[str, str]
) -> None:
    """A token whose client is not (or no longer) in face-match's table, e.g.
    erased with its organisation, is refused like a revoked one."""
    _, _, admin = await asyncio.to_thread(
        create_org_and_key, database_url, "OAuth Gone Org", ("public", "internal")
    )
    async with gateway_client(gateway_settings(servers)) as gateway:
        client_id, secret = await new_client(gateway, admin, "backend")
        token = await token_for(gateway, client_id, secret)
        assert (await gateway.get(CUSTOMERS, headers=bearer(token))).status_code == 200

        from sqlalchemy import delete

        from identity_store.db import Database
        from services.face_match.models import OAuthClient

        database = Database(database_url)
        try:
            await database.run(
                lambda s: s.execute(delete(OAuthClient).where(OAuthClient.client_id == client_id))
            )
        finally:
            database.dispose()
        # A new gateway (nothing cached) asks face-match.
    async with gateway_client(gateway_settings(servers)) as fresh:
        assert_error(await fresh.get(CUSTOMERS, headers=bearer(token)), 401, "ACCESS_TOKEN_REVOKED")


async def test_a_revoked_clients_sdk_sessions_are_refused(
    database_url: str, servers: dict[str, str]
) -> None:
    """A browser's SDK session minted with an OAuth client's access token ends
    with the client (within the revocation check), as its access tokens do;
    a session minted by the organisation's other client is unaffected."""
    _, _, admin = await asyncio.to_thread(
        create_org_and_key, database_url, "OAuth SDK Org", ("public", "internal")
    )
    clock = ManualClock()
    async with gateway_client(gateway_settings(servers)) as gateway:
        gateway.gateway.oauth_clients._clock = clock
        body = {"externalId": "ext-sdk-oauth", "fullName": "Siti Rahayu", "nik": NIK}
        created = await gateway.post("/api/customers", json=body, headers=bearer(admin))
        assert created.status_code == 200, created.text
        customer_id = created.json()["customer"]["customerId"]
        path = f"/api/identity/kyc/{customer_id}"
        sessions = {}
        for name in ("leaked backend", "other backend"):
            client_id, secret = await new_client(gateway, admin, name)
            access = await token_for(gateway, client_id, secret)
            minted = await gateway.post(
                "/api/identity/sdk-sessions",
                json={"customerId": customer_id},
                headers=bearer(access),
            )
            assert minted.status_code == 200, minted.text
            sessions[client_id] = minted.json()["token"]
        for token in sessions.values():
            assert (await gateway.get(path, headers=bearer(token))).status_code == 200
        leaked_id, kept_id = sessions
        revoked = await gateway.post(
            f"/api/oauth/clients/{leaked_id}/revoke", json={}, headers=bearer(admin)
        )
        assert revoked.status_code == 200, revoked.text
        clock.now += 1.0
        refused = await gateway.get(path, headers=bearer(sessions[leaked_id]))
        assert_error(refused, 401, "SDK_SESSION_INVALID")
        assert (await gateway.get(path, headers=bearer(sessions[kept_id]))).status_code == 200
