"""What the gateway answers and logs about a request's credential (black-box
probe 3, finding 12): the Bearer challenge of RFC 6750 section 3 on 401s and
403s, and an access log that names an OAuth client's id as one, not as an
API key's. The real gateway app; kyc-tier and face-match are stand-ins
(the key directory, the token keys, the OAuth client directory), and every
service address is a closed port."""

from __future__ import annotations

import contextlib
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from google.protobuf.descriptor import FieldDescriptor

from gateway import app as gateway_app
from gateway import oauth
from gateway.auth import ApiKeyCache, Principal
from gateway.routing import build_routes
from gateway.transcoding import INT_RANGES, WRAPPERS, is_map, is_repeated
from identity_runtime import mesh
from identity_runtime.errors import Unauthenticated
from services.face_match.oauth import SigningKeys
from tests.service.test_gateway_ratelimit import REDIS_URL
from tests.support.gateway import (
    assert_error,
    assert_token_error,
    bearer,
    gateway_client,
    gateway_settings,
)

PUBLIC_KEY = "idk_" + "p" * 32
INTERNAL_KEY = "idk_" + "i" * 32
UNKNOWN_KEY = "idk_" + "u" * 32
KEYS = SigningKeys.parse(SigningKeys.generate("cred-test-1"))
ISSUER = "identity-platform/face-match"
REVOKED_CLIENT = "fmci_revoked"
CHALLENGE = 'Bearer realm="identity-platform"'
INVALID_TOKEN = 'Bearer realm="identity-platform", error="invalid_token"'
INVALID_REQUEST = 'Bearer realm="identity-platform", error="invalid_request"'


def token(client_id: str = "fmci_1", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": "identity-platform",
        "sub": f"oauth_client:{client_id}",
        "org": "org_1",
        "scope": "public",
        "iat": now,
        "exp": now + 300,
        **claims,
    }
    return jwt.encode(
        body, KEYS.keys[KEYS.primary], algorithm="EdDSA", headers={"kid": KEYS.primary}
    )


async def resolve_key(key: str) -> Principal:
    scopes = {PUBLIC_KEY: {"public"}, INTERNAL_KEY: {"internal"}}.get(key)
    if scopes is None:
        raise Unauthenticated("the API key is unknown or revoked", "API_KEY_INVALID")
    return Principal("org_1", "key_1", frozenset(scopes))


async def resolve_client(client_id: str) -> Principal:
    if client_id == REVOKED_CLIENT:
        raise Unauthenticated("the client is revoked", "ACCESS_TOKEN_REVOKED")
    return Principal("org_1", client_id, frozenset({"public"}), kind="oauth_client")


async def jwks() -> list[dict[str, str]]:
    return KEYS.jwks()


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@contextlib.asynccontextmanager
async def stand_in_gateway(**overrides: str) -> AsyncIterator[Any]:
    dead = closed_port()
    settings = gateway_settings({service.package: dead for service in mesh.SERVICES}, **overrides)
    async with gateway_client(settings) as client:
        gateway = client.gateway
        gateway.api_keys = ApiKeyCache(resolve_key, 30, 100)
        gateway.oauth_clients = ApiKeyCache(resolve_client, 30, 100)
        gateway.access_tokens = oauth.AccessTokens(
            jwks, ISSUER, 300, active_client=gateway._active_client
        )
        yield client


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    async with stand_in_gateway() as client:
        yield client


PUBLIC_ROUTE = "/api/customers?pageSize=1"
INTERNAL_ROUTE = "/api/identity/audit-log"


async def test_a_refused_credential_is_invalid_token_and_no_credential_has_no_error(
    client,
) -> None:
    tampered = token()[:-2] + ("AA" if not token().endswith("AA") else "BB")
    cases = [
        # RFC 6750 section 3.1: no error code when the request carried no credential.
        ({}, 401, "API_KEY_MISSING", CHALLENGE),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "API_KEY_INVALID", CHALLENGE),
        # A credential that is invalid, expired or revoked: invalid_token.
        (bearer(UNKNOWN_KEY), 401, "API_KEY_INVALID", INVALID_TOKEN),
        ({"X-Api-Key": "sk_live_123"}, 401, "API_KEY_INVALID", INVALID_TOKEN),
        (bearer(tampered), 401, "ACCESS_TOKEN_INVALID", INVALID_TOKEN),
        (bearer(token(exp=int(time.time()) - 60)), 401, "ACCESS_TOKEN_INVALID", INVALID_TOKEN),
        (bearer(token(REVOKED_CLIENT)), 401, "ACCESS_TOKEN_REVOKED", INVALID_TOKEN),
        # Two credentials at once: invalid_request.
        ({**bearer(token()), "X-Api-Key": PUBLIC_KEY}, 401, "API_KEY_INVALID", INVALID_REQUEST),
        (
            {**bearer(PUBLIC_KEY), "X-Api-Key": INTERNAL_KEY},
            401,
            "API_KEY_INVALID",
            INVALID_REQUEST,
        ),
    ]
    for headers, status, reason, challenge in cases:
        response = await client.get(PUBLIC_ROUTE, headers=headers)
        assert_error(response, status, reason)
        assert response.headers.get_list("www-authenticate") == [challenge], (headers, reason)


@pytest.mark.parametrize("storage", ["memory", "redis"])
async def test_an_address_past_its_failed_credentials_gets_429_and_a_right_one_still_passes(
    storage: str,
) -> None:
    """probe5 P5-10: wrong keys, tokens and OAuth client secrets were answered
    401 without end. Past GATEWAY_FAILED_CREDENTIALS_PER_5_MIN refusals from
    one address, its refusals are 429 with Retry-After; a right credential is
    never throttled (re-probe R5-1: behind a proxy every client shares one
    address), and another address is not affected."""
    async with stand_in_gateway(
        failed_credentials_per_5_min="3",
        trusted_proxies="127.0.0.0/8",
        rate_limit_storage=REDIS_URL if storage == "redis" else "memory://",
        rate_limit_key_prefix=f"credentials-{uuid.uuid4().hex}",
    ) as client:
        here, elsewhere = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "203.0.113.8"}
        wrong = (bearer(UNKNOWN_KEY), bearer(token(REVOKED_CLIENT)), {"X-Api-Key": "sk_live_123"})
        for credential in wrong:
            assert (
                await client.get(PUBLIC_ROUTE, headers={**credential, **here})
            ).status_code == 401
        throttled = await client.get(PUBLIC_ROUTE, headers={**bearer(UNKNOWN_KEY), **here})
        error = assert_error(throttled, 429, "RATE_LIMITED")
        assert "failed credentials" in error["message"]
        assert 1 <= int(throttled.headers["retry-after"]) <= 300
        token_route = await client.post(
            "/api/oauth/token",
            content=b"grant_type=client_credentials&client_id=fmci_1&client_secret=x",
            headers={"Content-Type": "application/x-www-form-urlencoded", **here},
        )
        # The token route's service is a closed port here: its 503 is no refusal
        # (in RFC 6749 section 5.2's shape, as the token route answers every error).
        assert_token_error(token_route, 503, "temporarily_unavailable", "DEPENDENCY_UNAVAILABLE")
        # A right key from the same address is checked as usual (the closed
        # service port answers 503, not 429); so is anything from elsewhere.
        right = await client.get(PUBLIC_ROUTE, headers={**bearer(PUBLIC_KEY), **here})
        assert_error(right, 503, "DEPENDENCY_UNAVAILABLE")
        assert_error(await client.get(PUBLIC_ROUTE, headers=here), 401, "API_KEY_MISSING")
        other = await client.get(PUBLIC_ROUTE, headers={**bearer(UNKNOWN_KEY), **elsewhere})
        assert_error(other, 401, "API_KEY_INVALID")


async def test_a_scope_the_credential_lacks_is_insufficient_scope(client) -> None:
    for credential in (token(), PUBLIC_KEY):
        response = await client.get(INTERNAL_ROUTE, headers=bearer(credential))
        assert_error(response, 403, "SCOPE_INSUFFICIENT")
        assert response.headers["www-authenticate"] == (
            'Bearer realm="identity-platform", error="insufficient_scope", scope="internal"'
        )
    # A credential that has the scope passes the gateway (the service is down here).
    response = await client.get(INTERNAL_ROUTE, headers=bearer(INTERNAL_KEY))
    assert_error(response, 503, "DEPENDENCY_UNAVAILABLE")
    assert "www-authenticate" not in response.headers


class Recorder:
    """Stands in for the gateway's access logger, keeping each record."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def _keep(self, event: str, **fields: Any) -> None:
        self.records.append({"event": event, **fields})

    info = warning = error = _keep


async def test_the_access_log_names_an_oauth_client_as_one(client, monkeypatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(gateway_app, "access_log", recorder)
    await client.get(PUBLIC_ROUTE, headers=bearer(token("fmci_logged")))
    await client.get(PUBLIC_ROUTE, headers=bearer(PUBLIC_KEY))
    await client.get(PUBLIC_ROUTE)
    by_token, by_key, anonymous = recorder.records
    assert by_token["principal_kind"] == "oauth_client"
    assert by_token["client_id"] == "fmci_logged"
    assert "api_key_id" not in by_token
    # API keys are logged as before, with their kind.
    assert (by_key["principal_kind"], by_key["api_key_id"]) == ("api_key", "key_1")
    assert "client_id" not in by_key
    assert by_token["org_id"] == by_key["org_id"] == "org_1"
    # No credential: no principal at all.
    assert not {"principal_kind", "api_key_id", "client_id"} & anonymous.keys()
    assert anonymous["reason"] == "API_KEY_MISSING"


def _integer_query_parameters(message: Any, prefix: str = "") -> list[tuple[str, int]]:
    """(parameter, field type) of every integer a query string can set."""
    found = []
    for fd in message.fields:
        name = prefix + fd.json_name
        if fd.type in INT_RANGES:
            found.append((name, fd.type))
        elif fd.message_type is not None and not is_map(fd) and not is_repeated(fd):
            if fd.message_type.full_name in WRAPPERS:
                inner = fd.message_type.fields_by_name["value"]
                if inner.type in INT_RANGES:
                    found.append((name, inner.type))
            elif not fd.message_type.full_name.startswith("google."):
                found.extend(_integer_query_parameters(fd.message_type, name + "."))
    return found


def _query_routes() -> list[tuple[str, str, str, int]]:
    cases = []
    for route in build_routes():
        if route.body == "*":
            continue
        path = re.sub(r"\{[^}]*\}", "x1", route.path.template)
        for name, kind in _integer_query_parameters(route.method.input_type):
            if name.split(".")[0] not in route.path_fields():
                cases.append((route.verb, path, name, kind))
    return cases


QUERY_ROUTES = _query_routes()


def test_the_routed_integer_query_parameters_are_found() -> None:
    assert ("GET", "/api/customers", "pageSize", FieldDescriptor.TYPE_INT32) in QUERY_ROUTES


@pytest.mark.parametrize(("verb", "path", "name", "kind"), QUERY_ROUTES)
async def test_every_routed_integer_query_parameter_out_of_range_is_a_400(
    client, verb, path, name, kind
) -> None:
    low, high = INT_RANGES[kind]
    for value in (high + 1, low - 1, int("9" * 30), -int("9" * 30)):
        response = await client.request(
            verb, f"{path}?{name}={value}", headers=bearer(INTERNAL_KEY)
        )
        error = assert_error(response, 400, "INVALID_FIELD")
        assert error["metadata"] == {"field": name}
