"""The gateway in front of the six real services (kyc-tier on a migrated SQLite).

Covers: the seed's endpoint table (declared and served), domain errors as
HTTP JSON errors, API-key authentication and scopes, request-shape errors,
request ids, and the aggregated health.
"""

from __future__ import annotations

import itertools
import re

import pytest

from gateway.routing import RouteTable, build_routes
from identity_cli.schema import migrate_all
from identity_runtime import mesh
from tests.support import TESTDATA, start_service
from tests.support.gateway import (
    add_key,
    addresses_of,
    assert_error,
    bearer,
    create_org_and_key,
    gateway_client,
    gateway_settings,
    spec_of,
    start_mesh,
    stop_all,
)
from tests.support.mesh import gateway_tls, mesh_env
from tests.support.meshauth import service_env

# The services run mutual TLS (tests.support.mesh.mesh_env): so does the gateway.
GATEWAY_TLS = gateway_tls(service_env("GATEWAY", tls=True))

# The product documentation's endpoint table (tests/data/README.md).
ENDPOINTS = TESTDATA / "api" / "endpoints.txt"
# Reasons the gateway itself answers for routing, request shape and auth:
# a route "served by its service" never gets one of these.
GATEWAY_REASONS = {
    "ROUTE_NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "MALFORMED_REQUEST",
    "UNSUPPORTED_MEDIA_TYPE",
    "INVALID_BASE64",
    "PAYLOAD_TOO_LARGE",
    "API_KEY_MISSING",
    "API_KEY_INVALID",
    "SCOPE_INSUFFICIENT",
}


def seed_endpoints(text: str) -> list[tuple[str, str]]:
    """(METHOD, path) for every route of the seed's "Endpoints at a glance" table."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Endpoints at a glance")
    endpoints: list[tuple[str, str]] = []
    for line in lines[start + 1 :]:
        if not line.startswith("|"):
            if endpoints:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[0] in ("Group", "---"):
            continue
        for method_text, path_text in re.findall(
            r"\b((?:GET|POST|PUT|PATCH|DELETE)(?:/(?:GET|POST|PUT|PATCH|DELETE))*) (/[^\s·?]+)",
            cells[1],
        ):
            for method in method_text.split("/"):
                for path in expand_braces(path_text):
                    endpoints.append((method, path))
    return endpoints


def expand_braces(path: str) -> list[str]:
    """`/a/{begin,finish}` -> `/a/begin`, `/a/finish`; `{id}` stays a parameter."""
    parts = re.split(r"(\{[^}]*,[^}]*\})", path)
    options = [p[1:-1].split(",") if p.startswith("{") and "," in p else [p] for p in parts]
    return ["".join(choice) for choice in itertools.product(*options)]


def normalise(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_the_seed_table_parser_reads_every_group() -> None:
    endpoints = seed_endpoints(ENDPOINTS.read_text())
    assert ("POST", "/api/auth/webauthn/register/begin") in endpoints
    assert ("POST", "/api/auth/webauthn/auth/finish") in endpoints
    assert ("GET", "/api/customers") in endpoints and ("POST", "/api/customers") in endpoints
    assert ("GET", "/api/identity/search") in endpoints
    assert ("GET", "/api/healthz") in endpoints
    assert len(set(endpoints)) == len(endpoints) >= 36


def test_every_seed_endpoint_is_declared_in_the_contracts() -> None:
    declared = {
        (route.verb, normalise(route.path.template))
        for route in RouteTable(build_routes(), mesh.BY_PACKAGE)
    }
    missing = [
        (m, p)
        for m, p in seed_endpoints(ENDPOINTS.read_text())
        if (m, normalise(p)) not in declared
    ]
    assert missing == []


# --- the live mesh ------------------------------------------------------------------


@pytest.fixture(scope="module")
def mesh_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('gateway-mesh') / 'identity.db'}"
    migrate_all(url)
    return url


@pytest.fixture(scope="module")
async def services(mesh_database: str, tmp_path_factory: pytest.TempPathFactory):
    servers = await start_mesh(mesh_database, tmp_path_factory.mktemp("mesh-secrets"))
    yield servers
    await stop_all(servers)


@pytest.fixture(scope="module")
def partners(mesh_database: str) -> dict[str, str]:
    org_a, internal_id, internal = create_org_and_key(mesh_database, "Org A", ("internal",))
    public_id, public = add_key(mesh_database, org_a, ("public",))
    org_b, other_id, other = create_org_and_key(mesh_database, "Org B", ("public", "internal"))
    return {
        "org_a": org_a,
        "internal": internal,
        "internal_id": internal_id,
        "public": public,
        "public_id": public_id,
        "org_b": org_b,
        "other": other,
        "other_id": other_id,
    }


@pytest.fixture(scope="module")
async def client(services):
    # /api/healthz must reach every service over fresh mutual-TLS channels within
    # the health timeout: 10 s rather than the 1 s default, for a loaded CI machine.
    settings = gateway_settings(addresses_of(services), health_timeout_seconds="10", **GATEWAY_TLS)
    async with gateway_client(settings) as http:
        yield http


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "id_0123456789", path)


async def test_every_seed_endpoint_is_served_with_an_internal_key(client, partners) -> None:
    endpoints = seed_endpoints(ENDPOINTS.read_text())
    # Every route is implemented: each answers from its service, a success or a
    # refusal of the placeholder ids and empty bodies (never a 5xx).
    bodies = {
        ("POST", "/api/identity/api-keys"): {"name": "seed check", "scopes": ["SCOPE_PUBLIC"]}
    }
    outcomes = {}
    for method, path in endpoints:
        url = concrete(path)
        kwargs = {"headers": bearer(partners["internal"])}
        if method == "POST":
            kwargs["json"] = bodies.get((method, path), {})
        response = await client.request(method, url, **kwargs)
        outcomes[(method, path)] = response.status_code
        assert response.headers["content-type"].split(";")[0] in ("application/json", "text/csv"), (
            method,
            path,
        )
        if response.status_code < 300:
            continue
        error = response.json()["error"]
        assert error["reason"] not in GATEWAY_REASONS, (method, path, error)
        assert response.status_code < 500, (method, path, error)
    # The implemented routes really succeed through the gateway.
    assert outcomes[("GET", "/api/identity/api-keys")] == 200
    assert outcomes[("POST", "/api/identity/api-keys")] == 200
    assert outcomes[("GET", "/api/healthz")] == 200
    assert outcomes[("GET", "/api/identity/webhooks")] == 200


async def test_webhook_routes_are_served_not_501(client, partners) -> None:
    # They were the last 501 routes; a partner's new organisation has no endpoint yet.
    response = await client.get("/api/identity/webhooks", headers=bearer(partners["public"]))
    assert response.status_code == 200, response.text
    assert response.json().get("webhooks", []) == []
    refused = await client.post(
        "/api/identity/webhooks/whk_unknown/test", json={}, headers=bearer(partners["public"])
    )
    assert_error(refused, 404, "WEBHOOK_NOT_FOUND")


async def test_a_domain_error_reaches_the_client_as_json(client, partners) -> None:
    # kyc-tier refuses an unknown scope with INVALID_ARGUMENT / INVALID_FIELD.
    response = await client.post(
        "/api/identity/api-keys",
        json={"name": "x", "scopes": ["SCOPE_ANONYMOUS"]},
        headers=bearer(partners["internal"]),
    )
    error = assert_error(response, 400, "INVALID_FIELD")
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["metadata"] == {"field": "scopes"}


async def test_missing_and_invalid_keys_are_401(client) -> None:
    response = await client.get("/api/customers")
    assert_error(response, 401, "API_KEY_MISSING")
    assert response.headers["www-authenticate"].startswith("Bearer")
    # Well-formed but unknown: kyc-tier says API_KEY_INVALID.
    response = await client.get("/api/customers", headers=bearer("idk_" + "a" * 32))
    assert_error(response, 401, "API_KEY_INVALID")
    response = await client.get("/api/customers", headers={"X-Api-Key": "not-a-key"})
    assert_error(response, 401, "API_KEY_INVALID")
    response = await client.get("/api/customers", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_error(response, 401, "API_KEY_INVALID")


async def test_keys_are_accepted_in_either_header(client, partners) -> None:
    for headers in (bearer(partners["internal"]), {"X-Api-Key": partners["internal"]}):
        response = await client.get("/api/identity/api-keys", headers=headers)
        assert response.status_code == 200, response.text
    response = await client.get(
        "/api/identity/api-keys",
        headers={**bearer(partners["internal"]), "X-Api-Key": partners["other"]},
    )
    assert_error(response, 401, "API_KEY_INVALID")


async def test_a_public_key_on_an_internal_route_is_403(client, partners) -> None:
    response = await client.get("/api/identity/api-keys", headers=bearer(partners["public"]))
    error = assert_error(response, 403, "SCOPE_INSUFFICIENT")
    assert error["metadata"] == {"required_scope": "internal"}
    # The same key passes a public route (which then answers from its service).
    response = await client.get("/api/identity/customers/cus_1", headers=bearer(partners["public"]))
    assert_error(response, 404, "CUSTOMER_NOT_FOUND")


async def test_spoofed_identity_headers_are_ignored(client, partners) -> None:
    response = await client.get(
        "/api/identity/api-keys",
        headers={
            **bearer(partners["internal"]),
            "X-Identity-Org": partners["org_b"],
            "X-Identity-Actor": f"api_key:{partners['other_id']}",
            "X-Identity-Scopes": "internal",
        },
    )
    assert response.status_code == 200, response.text
    ids = {key["apiKeyId"] for key in response.json()["apiKeys"]}
    assert partners["internal_id"] in ids and partners["public_id"] in ids
    assert partners["other_id"] not in ids


async def test_resolved_keys_are_cached_by_digest(client, partners, mesh_database) -> None:
    gateway = client.gateway
    _, fresh = add_key(mesh_database, partners["org_a"], ("internal",))
    before = gateway.api_keys.lookups
    for _ in range(3):
        assert (
            await client.get("/api/identity/api-keys", headers=bearer(fresh))
        ).status_code == 200
    assert gateway.api_keys.lookups == before + 1
    # The cache holds digests, never the key.
    assert all(fresh.encode() not in digest for digest in gateway.api_keys._entries)


async def test_request_ids_are_echoed_and_insane_ones_replaced(client) -> None:
    response = await client.get("/api/healthz", headers={"X-Request-Id": "partner-req.42:a_b-c"})
    assert response.headers["x-request-id"] == "partner-req.42:a_b-c"
    response = await client.get("/api/nothing", headers={"X-Request-Id": "bad id\twith spaces"})
    error = assert_error(response, 404, "ROUTE_NOT_FOUND")
    assert re.fullmatch(r"[0-9a-f]{32}", error["requestId"])


# --- request shape: always 4xx, never 5xx ----------------------------------------------


async def test_malformed_json_unknown_field_and_bad_base64(client, partners) -> None:
    headers = {**bearer(partners["public"]), "Content-Type": "application/json"}
    response = await client.post(
        "/api/identity/face/match", content=b'{"customerId": ', headers=headers
    )
    assert_error(response, 400, "MALFORMED_REQUEST")
    response = await client.post("/api/identity/face/match", content=b"[]", headers=headers)
    assert_error(response, 400, "MALFORMED_REQUEST")
    response = await client.post(
        "/api/identity/face/match", json={"customerId": "c", "selfie": "x"}, headers=headers
    )
    assert assert_error(response, 400, "MALFORMED_REQUEST")["metadata"] == {"field": "selfie"}
    response = await client.post(
        "/api/identity/face/match",
        json={"customerId": "c", "probeImage": {"data": "not base64!"}},
        headers=headers,
    )
    assert assert_error(response, 400, "INVALID_BASE64")["metadata"] == {"field": "probeImage.data"}


async def test_wrong_content_type_is_415(client, partners) -> None:
    response = await client.post(
        "/api/identity/face/match",
        content=b"customerId=c",
        headers={**bearer(partners["public"]), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    response = await client.post(
        "/api/identity/face/match",
        content='{"customerId": "c"}'.encode("utf-16"),
        headers={**bearer(partners["public"]), "Content-Type": "application/json; charset=utf-16"},
    )
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    # A body declared compressed is not decoded, so it is refused, not read as plain.
    for encoding in ("gzip", "br"):
        response = await client.post(
            "/api/identity/face/match",
            content=b'{"customerId": "c"}',
            headers={
                **bearer(partners["public"]),
                "Content-Type": "application/json",
                "Content-Encoding": encoding,
            },
        )
        assert_error(response, 415, "UNSUPPORTED_CONTENT_ENCODING")


async def test_unknown_route_and_wrong_method(client) -> None:
    assert_error(await client.get("/api/identity/nothing/here"), 404, "ROUTE_NOT_FOUND")
    assert_error(await client.get("/"), 404, "ROUTE_NOT_FOUND")
    response = await client.put("/api/identity/webhooks", json={})
    error = assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "GET, POST"
    assert error["metadata"] == {"allow": "GET, POST"}
    response = await client.post("/api/openapi.json")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")


async def test_oversize_bodies_are_413_by_content_length_and_while_streaming(
    services, partners
) -> None:
    settings = gateway_settings(addresses_of(services), max_body_bytes="2048", **GATEWAY_TLS)
    async with gateway_client(settings) as small:
        big = b'{"customerId": "' + b"x" * 4096 + b'"}'
        headers = {**bearer(partners["public"]), "Content-Type": "application/json"}
        response = await small.post("/api/identity/face/match", content=big, headers=headers)
        assert assert_error(response, 413, "PAYLOAD_TOO_LARGE")["metadata"] == {
            "limit_bytes": "2048"
        }

        async def chunks():
            for _ in range(8):
                yield b"x" * 1024

        response = await small.post("/api/identity/face/match", content=chunks(), headers=headers)
        assert "content-length" not in response.request.headers
        assert_error(response, 413, "PAYLOAD_TOO_LARGE")
        # Under the limit, the same route answers from its service.
        response = await small.post(
            "/api/identity/face/match", json={"customerId": "c"}, headers=headers
        )
        assert_error(response, 404, "CUSTOMER_NOT_FOUND")


# --- health ---------------------------------------------------------------------------------


async def test_health_is_200_when_every_service_is_serving(client, partners) -> None:
    # Anonymous: the status only, no service address.
    anonymous = await client.get("/api/healthz")
    assert anonymous.status_code == 200, anonymous.text
    assert anonymous.json() == {"status": "SERVING", "services": []}
    # A public key is no better; a wrong key is refused.
    public = await client.get("/api/healthz", headers=bearer(partners["public"]))
    assert public.json() == {"status": "SERVING", "services": []}
    wrong = await client.get("/api/healthz", headers=bearer("idk_" + "x" * 32))
    assert_error(wrong, 401, "API_KEY_INVALID")
    response = await client.get("/api/healthz", headers=bearer(partners["internal"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "SERVING"
    assert [s["name"] for s in body["services"]] == [s.name for s in mesh.SERVICES]
    for service in body["services"]:
        assert service["status"] == "SERVING"
        assert isinstance(service["latencyMs"], int) and service["latencyMs"] >= 0


async def test_health_is_503_with_the_stopped_service_unreachable(
    services, mesh_database, tmp_path, partners
) -> None:
    audit = await start_service(spec_of(mesh.AUDIT), mesh_env(mesh_database, tmp_path))
    addresses = {**addresses_of(services), "audit": audit.address}
    # A stopped service is refused at once; the timeout only has to let the
    # others' first TLS handshakes finish on a loaded machine (0.5 s did not always).
    async with gateway_client(
        gateway_settings(addresses, health_timeout_seconds="10", **GATEWAY_TLS)
    ) as http:
        assert (await http.get("/api/healthz")).status_code == 200
        await audit.stop(0)
        anonymous = await http.get("/api/healthz")
        response = await http.get("/api/healthz", headers=bearer(partners["internal"]))
    assert anonymous.status_code == 503
    assert anonymous.json() == {"status": "NOT_SERVING", "services": []}
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "NOT_SERVING"
    by_name = {s["name"]: s for s in body["services"]}
    assert by_name["audit"]["status"] == "UNREACHABLE"
    assert by_name["audit"]["detail"]
    assert all(s["status"] == "SERVING" for name, s in by_name.items() if name != "audit")


async def test_access_logs_carry_the_route_never_the_query_or_path(client, partners, capfd) -> None:
    # A search by name (the log scrubber would mask a NIK anyway; a name it cannot recognise).
    response = await client.get(
        "/api/identity/search?q=Budi+Santoso", headers=bearer(partners["internal"])
    )
    assert response.status_code == 200, response.text
    response = await client.get(
        "/api/identity/customers/Siti-Rahayu", headers=bearer(partners["internal"])
    )
    assert_error(response, 404, "CUSTOMER_NOT_FOUND")
    captured = capfd.readouterr()
    logs = captured.out + captured.err
    assert "/api/identity/search" in logs and "CUSTOMER_NOT_FOUND" in logs
    assert "Budi" not in logs and "Siti" not in logs
    assert partners["internal"] not in logs
