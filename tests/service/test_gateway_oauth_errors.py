"""The OAuth token route answers its errors as RFC 6749 section 5.2 shapes
them: `{"error": "<code>", "error_description": "<ASCII>", ...}` with 400,
401 (invalid_client, with the Basic challenge) or the refusal's own status,
`Cache-Control: no-store` and `Pragma: no-cache`; the platform's reason,
metadata and request id ride along as extra members. Before, the token
route answered the platform's `{"error": {"code": 401, ...}}`, which OAuth
client libraries (authlib, requests-oauthlib, Spring, golang.org/x/oauth2)
read as a string and fail on. Real kyc-tier and face-match servers on port 0
over SQLite, the real gateway in front; a closed port for the 503."""

from __future__ import annotations

import base64
import json
import socket
import uuid
from typing import Any

import jsonschema
import pytest

from gateway import oauth
from gateway.app import Gateway
from identity_runtime.errors import DeadlineExceeded, Internal
from tests.support.gateway import (
    assert_documented,
    assert_token_error,
    bearer,
    gateway_client,
    gateway_settings,
    internal_key,
)
from tests.support.kyc_and_face_match import with_kyc_tier
from tests.support.mesh import module_database

TOKEN = "/api/oauth/token"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
GRANT = "grant_type=client_credentials"
BODY_LIMIT = 2048


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory):
    yield from module_database("sqlite", tmp_path_factory.mktemp("oauth-errors"))


@pytest.fixture(scope="module")
async def servers(database_url: str, tmp_path_factory: pytest.TempPathFactory):
    async with with_kyc_tier(database_url, tmp_path_factory.mktemp("oauth-errors-bucket")) as a:
        yield a


@pytest.fixture(scope="module")
async def admin_key(database_url: str) -> str:
    return await internal_key(database_url, "OAuth Errors Org")


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def new_client(client: Any, admin_key: str, name: str) -> tuple[str, str]:
    made = await client.post("/api/oauth/clients", json={"name": name}, headers=bearer(admin_key))
    assert made.status_code == 200, made.text
    return made.json()["client"]["clientId"], made.json()["clientSecret"]


def assert_schema_conforms(gateway: Gateway, response: Any) -> None:
    """The body matches the schema the OpenAPI document declares for the
    token route and this status (what schemathesis checks)."""
    parsed = json.loads(gateway.openapi_bytes())
    declared = parsed["paths"][TOKEN]["post"]["responses"][str(response.status_code)]
    ref = declared["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/TokenError"
    jsonschema.validate(response.json(), parsed["components"]["schemas"]["TokenError"])
    assert_documented(response)


async def test_every_refusal_of_the_token_route_is_rfc_6749_shaped(servers, admin_key) -> None:
    settings = gateway_settings(servers, max_body_bytes=str(BODY_LIMIT))
    async with gateway_client(settings) as client:
        client_id, secret = await new_client(client, admin_key, "rfc backend")
        revoked_id, revoked_secret = await new_client(client, admin_key, "revoked backend")
        revoked = await client.post(
            f"/api/oauth/clients/{revoked_id}/revoke", json={}, headers=bearer(admin_key)
        )
        assert revoked.status_code == 200, revoked.text
        in_body = f"{GRANT}&client_id={client_id}&client_secret={secret}"
        cases: list[tuple[dict[str, Any], int, str, str]] = [
            # Client authentication failed: invalid_client, 401, Basic challenge.
            ({"content": GRANT, "headers": {**FORM, **basic(client_id, "wrong")}}, 401,
             "invalid_client", "CLIENT_CREDENTIALS_INVALID"),
            ({"content": f"{GRANT}&client_id={client_id}&client_secret=wrong", "headers": FORM},
             401, "invalid_client", "CLIENT_CREDENTIALS_INVALID"),
            ({"json": {"grant_type": "client_credentials", "client_id": "fmc_unknown",
                       "client_secret": "wrong"}}, 401,
             "invalid_client", "CLIENT_CREDENTIALS_INVALID"),
            ({"content": GRANT, "headers": {**FORM, **basic(revoked_id, revoked_secret)}}, 401,
             "invalid_client", "CLIENT_CREDENTIALS_INVALID"),
            # Another grant, a scope not offered.
            ({"content": in_body.replace(GRANT, "grant_type=password"), "headers": FORM}, 400,
             "unsupported_grant_type", "INVALID_FIELD"),
            ({"content": f"{in_body}&scope=admin", "headers": FORM}, 400,
             "invalid_scope", "INVALID_FIELD"),
            # Malformed: not a form, a parameter missing, repeated, unknown;
            # two ways of authenticating; Basic that is not base64.
            ({"content": "grant_type", "headers": FORM}, 400,
             "invalid_request", "MALFORMED_REQUEST"),
            ({"content": f"client_id={client_id}&client_secret={secret}", "headers": FORM}, 400,
             "invalid_request", "MALFORMED_REQUEST"),
            ({"json": {"client_id": client_id, "client_secret": secret}}, 400,
             "invalid_request", "MALFORMED_REQUEST"),
            ({"content": f"{in_body}&{GRANT}", "headers": FORM}, 400,
             "invalid_request", "MALFORMED_REQUEST"),
            ({"content": f"{in_body}&password=x", "headers": FORM}, 400,
             "invalid_request", "MALFORMED_REQUEST"),
            ({"content": in_body, "headers": {**FORM, **basic(client_id, secret)}}, 400,
             "invalid_request", "MALFORMED_REQUEST"),
            ({"content": GRANT, "headers": {**FORM, "Authorization": "Basic !!!"}}, 400,
             "invalid_request", "MALFORMED_REQUEST"),
            # The body: too large, of another type.
            ({"content": in_body + "&scope=" + "p" * BODY_LIMIT, "headers": FORM}, 413,
             "invalid_request", "PAYLOAD_TOO_LARGE"),
            ({"content": in_body, "headers": {"Content-Type": "text/plain"}}, 415,
             "invalid_request", "UNSUPPORTED_MEDIA_TYPE"),
        ]  # fmt: skip
        for request, status, error, reason in cases:
            response = await client.post(TOKEN, **request)
            body = assert_token_error(response, status, error, reason)
            assert_schema_conforms(client.gateway, response)
            # Neither secret is ever echoed.
            assert secret not in response.text and revoked_secret not in response.text
            if status != 401:
                assert "www-authenticate" not in response.headers, (request, body)
        # The right secret still gets its token, RFC 6749 section 5.1's answer.
        for request in (
            {"content": in_body, "headers": FORM},
            {"content": GRANT, "headers": {**FORM, **basic(client_id, secret)}},
        ):
            issued = await client.post(TOKEN, **request)
            assert issued.status_code == 200, issued.text
            assert issued.json()["token_type"] == "Bearer" and issued.json()["access_token"]
            assert issued.headers["cache-control"] == "no-store"
            assert issued.headers["pragma"] == "no-cache"


async def test_query_parameters_on_the_token_route_name_its_form_and_json_bodies(
    servers,
) -> None:
    """The token route takes a form body as well as JSON: its refusal of query
    parameters says so (black-box probe 6, D6: it said "the JSON body")."""
    async with gateway_client(gateway_settings(servers)) as client:
        for request in (
            {"content": GRANT, "headers": FORM},
            {"json": {"grant_type": "client_credentials"}},
        ):
            response = await client.post(TOKEN + "?client_secret=x", **request)
            body = assert_token_error(response, 400, "invalid_request", "MALFORMED_REQUEST")
            assert body["error_description"] == (
                "this route takes every field in the body (a form or JSON); "
                "query parameters are not accepted"
            ), body
        # Another route with a JSON body still says JSON.
        other = await client.post("/api/auth/login?x=1", json={})
        assert "every field in the JSON body" in other.json()["error"]["message"]


async def test_the_error_description_is_printable_ascii_without_quotes(servers) -> None:
    """RFC 6749 section 5.2: error_description is %x20-21 / %x23-5B / %x5D-7E;
    an unknown parameter's name is echoed clipped, with anything outside
    that range replaced."""
    async with gateway_client(gateway_settings(servers)) as client:
        name = "nam%C3%A9%22%5C" + "x" * 100
        response = await client.post(TOKEN, content=f"{GRANT}&{name}=v", headers=FORM)
        body = assert_token_error(response, 400, "invalid_request", "MALFORMED_REQUEST")
        assert body["error_description"].startswith("unknown form parameter 'nam?'/")
        assert "x" * 100 not in body["error_description"]


async def test_a_dependency_down_and_the_throttle_keep_their_status_and_retry_after(
    servers, admin_key
) -> None:
    """RFC 6749 has no code for 429 and 503: temporarily_unavailable (its
    section 4.1.2.1's), with the status and the Retry-After kept."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    async with gateway_client(gateway_settings({**servers, "face_match": closed})) as client:
        response = await client.post(
            TOKEN, content=f"{GRANT}&client_id=fmc_x&client_secret=s", headers=FORM
        )
        body = assert_token_error(
            response, 503, "temporarily_unavailable", "DEPENDENCY_UNAVAILABLE"
        )
        assert body["metadata"] == {"service": "face-match"}
        assert response.headers["retry-after"].isdigit()
        assert_schema_conforms(client.gateway, response)
    settings = gateway_settings(
        servers, failed_credentials_per_5_min="2", rate_limit_key_prefix=uuid.uuid4().hex
    )
    async with gateway_client(settings) as client:
        client_id, secret = await new_client(client, admin_key, "throttled backend")
        wrong = {"content": GRANT, "headers": {**FORM, **basic(client_id, "wrong")}}
        for _ in range(2):
            response = await client.post(TOKEN, **wrong)
            assert_token_error(response, 401, "invalid_client", "CLIENT_CREDENTIALS_INVALID")
        throttled = await client.post(TOKEN, **wrong)
        assert_token_error(throttled, 429, "temporarily_unavailable", "RATE_LIMITED")
        assert 1 <= int(throttled.headers["retry-after"]) <= 300
        assert "www-authenticate" not in throttled.headers
        assert_schema_conforms(client.gateway, throttled)
        # A right secret is never throttled.
        issued = await client.post(
            TOKEN, content=GRANT, headers={**FORM, **basic(client_id, secret)}
        )
        assert issued.status_code == 200, issued.text


def test_a_failure_of_the_platform_is_server_error_or_temporarily_unavailable() -> None:
    """A 500 is server_error, a 504 temporarily_unavailable: the codes of
    RFC 6749 section 4.1.2.1 for what section 5.2 has none."""
    for error, status, code in (
        (Internal("internal error; quote the request id", "INTERNAL"), 500, "server_error"),
        (DeadlineExceeded("the request did not finish", "DEADLINE_EXCEEDED"), 504,
         "temporarily_unavailable"),
    ):  # fmt: skip
        body = json.loads(oauth.token_error_body(error, status, "req-1"))
        assert body == {
            "error": code,
            "error_description": error.message,
            "reason": error.reason,
            "metadata": {},
            "request_id": "req-1",
        }


async def test_a_body_of_another_type_on_the_token_route_names_the_form(servers) -> None:
    """Re-probe 6: the token route's 415 told an OAuth client to send JSON,
    though the route takes (and RFC 6749 prescribes) a form."""
    async with gateway_client(gateway_settings(servers)) as client:
        response = await client.post(TOKEN, content=GRANT, headers={"Content-Type": "text/plain"})
        body = assert_token_error(response, 415, "invalid_request", "UNSUPPORTED_MEDIA_TYPE")
        assert body["metadata"] == {"expected": f"{FORM['Content-Type']} or application/json"}
        assert FORM["Content-Type"] in body["error_description"]
