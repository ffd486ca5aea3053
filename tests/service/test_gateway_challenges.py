"""Every 401 the gateway answers carries a challenge (RFC 7235 section 3.1),
also those it passes on from a service's UNAUTHENTICATED (black-box probe:
SESSION_INVALID, CLIENT_CREDENTIALS_INVALID and the others carried none;
the gateway's own refusals of keys and tokens are in test_gateway_credentials
and test_gateway_sdk_sessions).
And a request body with a Content-Encoding is refused on a JSON route (415
UNSUPPORTED_CONTENT_ENCODING, not read as plain). Real kyc-tier and
face-match servers on port 0 and one database, SQLite and PostgreSQL, the
real gateway in front."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from identity_runtime.authz import GATEWAY_ISSUER
from identity_runtime.meshauth import TrustedKeys, load_private_key
from services.face_match.service import SPEC as FACE_MATCH
from tests.support import start_service, unique_name
from tests.support.face_match import env as face_match_env
from tests.support.gateway import (
    assert_error,
    assert_token_error,
    bearer,
    gateway_client,
    gateway_settings,
    internal_key,
)
from tests.support.kyc_and_face_match import with_kyc_tier
from tests.support.mesh import module_database
from tests.support.meshauth import SIGNERS, signing_key_pem

BEARER = 'Bearer realm="identity-platform"'
BASIC = 'Basic realm="identity-platform", charset="UTF-8"'
COOKIE = (
    'Cookie realm="identity-platform", cookie-name="identity_session", '
    'form-action="/api/auth/login"'
)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    yield from module_database(request.param, tmp_path_factory.mktemp("challenges"))


@pytest.fixture(scope="module")
async def servers(database_url: str, tmp_path_factory: pytest.TempPathFactory):
    bucket = tmp_path_factory.mktemp("challenges-bucket")
    async with with_kyc_tier(database_url, bucket) as addresses:
        yield addresses


@pytest.fixture(scope="module")
async def client(servers: dict[str, str]):
    async with gateway_client(gateway_settings(servers)) as http:
        yield http


@pytest.fixture(scope="module")
async def admin_key(database_url: str) -> str:
    return await internal_key(database_url, "Challenge Org")


def sign_in() -> bytes:
    """A console sign-in that fails (an unknown user, each time another: the
    throttle counts per email)."""
    email = f"{unique_name('nobody').lower()}@bank.example"
    return json.dumps({"email": email, "password": "not the password"}).encode()


def challenge_of(response: Any, status: int, reason: str) -> str:
    assert_error(response, status, reason)
    return str(response.headers["www-authenticate"])


async def test_a_refused_console_session_is_challenged_for_the_cookie(client) -> None:
    """kyc-tier's SESSION_INVALID: the cookie scheme, `invalid_token` (sign in again)."""
    for path in ("/api/auth/me", "/api/customers?pageSize=1"):
        response = await client.get(path, headers={"Cookie": "identity_session=ics_forged"})
        assert challenge_of(response, 401, "SESSION_INVALID") == COOKIE + ', error="invalid_token"'
    # A state-changing request with a forged cookie is refused the same way.
    response = await client.post(
        "/api/auth/logout",
        json={},
        headers={"Cookie": "identity_session=ics_forged", "X-CSRF-Token": "guess"},
    )
    assert challenge_of(response, 401, "SESSION_INVALID") == COOKIE + ', error="invalid_token"'


async def test_a_failed_console_sign_in_is_challenged_for_the_cookie(client) -> None:
    """CREDENTIALS_INVALID: the cookie scheme and where to sign in, no error
    code (no session was presented)."""
    response = await client.post("/api/auth/login", content=sign_in(), headers=JSON)
    assert challenge_of(response, 401, "CREDENTIALS_INVALID") == COOKIE
    client_data = base64.urlsafe_b64encode(json.dumps({"challenge": "c2Vlbg"}).encode())
    credential = {"id": "cred", "response": {"clientDataJSON": client_data.decode()}}
    response = await client.post(
        "/api/auth/webauthn/auth/finish",
        json={"ceremonyId": "unknown", "credentialJson": json.dumps(credential)},
    )
    assert challenge_of(response, 401, "PASSKEY_INVALID") == COOKIE


async def test_the_token_routes_invalid_client_is_challenged_for_basic(client, admin_key) -> None:
    """RFC 6749 section 5.2: invalid_client is a 401 whose challenge is the
    scheme a client authenticates with there, HTTP Basic, whether it sent
    its credentials as Basic, in the form or in JSON."""
    made = await client.post(
        "/api/oauth/clients", json={"name": "challenged"}, headers=bearer(admin_key)
    )
    assert made.status_code == 200, made.text
    client_id = made.json()["client"]["clientId"]
    basic = base64.b64encode(f"{client_id}:wrong-secret".encode()).decode()
    attempts = [
        client.post(
            "/api/oauth/token",
            content=b"grant_type=client_credentials",
            headers={**FORM, "Authorization": f"Basic {basic}"},
        ),
        client.post(
            "/api/oauth/token",
            content=f"grant_type=client_credentials&client_id={client_id}"
            "&client_secret=wrong-secret".encode(),
            headers=FORM,
        ),
        client.post(
            "/api/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": "fmc_unknown",
                "client_secret": "wrong-secret",
            },
        ),
    ]
    for attempt in attempts:
        # RFC 6749 section 5.2's body (assert_token_error checks the Basic challenge).
        assert_token_error(await attempt, 401, "invalid_client", "CLIENT_CREDENTIALS_INVALID")
    # The right secret still gets its token.
    secret = made.json()["clientSecret"]
    issued = await client.post(
        "/api/oauth/token",
        json={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert issued.status_code == 200, issued.text
    assert "www-authenticate" not in issued.headers


async def test_a_service_refusing_the_gateway_itself_is_503_not_401(
    database_url: str, servers: dict[str, str], admin_key: str, tmp_path: Path
) -> None:
    """A service that refuses the gateway's caller token (a face-match that
    does not trust the gateway's key): the mesh's configuration failed, not
    the client's good key, so the answer is 503 DEPENDENCY_UNAVAILABLE naming
    the service, with no challenge that would make the client drop its key."""
    untrusting = TrustedKeys.document(
        {
            name: [load_private_key(signing_key_pem(name)).public_key()]
            for name in SIGNERS
            if name != GATEWAY_ISSUER
        }
    )
    face_match = await start_service(
        FACE_MATCH,
        face_match_env(database_url, tmp_path / "bucket", FACE_MATCH_MESH_TRUSTED_KEYS=untrusting),
    )
    try:
        settings = gateway_settings({**servers, "face_match": face_match.address})
        async with gateway_client(settings) as gateway:
            response = await gateway.get(
                "/api/face-match/submissions/order-1", headers=bearer(admin_key)
            )
            error = assert_error(response, 503, "DEPENDENCY_UNAVAILABLE")
            assert error["metadata"] == {"service": "face-match"}
            assert "www-authenticate" not in response.headers
            assert response.headers["retry-after"].isdigit()
    finally:
        await face_match.stop(0)


async def test_a_json_body_with_a_content_encoding_is_refused(client) -> None:
    """gzip or br: 415 UNSUPPORTED_CONTENT_ENCODING with `Accept-Encoding:
    identity`, before the service sees it (before the fix: 415
    UNSUPPORTED_MEDIA_TYPE, which names the wrong header); identity, or no
    header, is read as JSON and reaches kyc-tier."""
    for encoding in ("gzip", "br", "identity, gzip", "GZIP"):
        response = await client.post(
            "/api/auth/login",
            content=sign_in(),
            headers={**JSON, "Content-Encoding": encoding},
        )
        error = assert_error(response, 415, "UNSUPPORTED_CONTENT_ENCODING")
        assert error["metadata"] == {"accepted": "identity"}
        assert response.headers["accept-encoding"] == "identity"
    # The OAuth token route's form body too (in RFC 6749 section 5.2's shape).
    response = await client.post(
        "/api/oauth/token",
        content=b"grant_type=client_credentials",
        headers={**FORM, "Content-Encoding": "gzip"},
    )
    body = assert_token_error(response, 415, "invalid_request", "UNSUPPORTED_CONTENT_ENCODING")
    assert body["metadata"] == {"accepted": "identity"}
    for headers in (JSON, {**JSON, "Content-Encoding": "identity"}):
        response = await client.post("/api/auth/login", content=sign_in(), headers=headers)
        assert_error(response, 401, "CREDENTIALS_INVALID")
