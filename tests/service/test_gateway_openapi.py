"""The OpenAPI 3.1 document: valid, complete, faithful to the proto3 JSON mapping."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gateway.comments import contract_comments
from gateway.openapi import build_document
from gateway.routing import RouteTable, build_routes
from identity_cli.main import main as identity_main
from identity_runtime import mesh
from tests.support.gateway import gateway_client, gateway_settings

ROUTES = RouteTable(build_routes(), mesh.BY_PACKAGE)


@pytest.fixture(scope="module")
def document() -> dict:
    return build_document(ROUTES)


def schema(document: dict, name: str) -> dict:
    return document["components"]["schemas"][name]


def conforms(document: dict, name: str, instance: object) -> None:
    """Validate an instance against a component schema, following $refs."""
    registry = Registry().with_resource(
        "urn:api", Resource.from_contents(document, default_specification=DRAFT202012)
    )
    Draft202012Validator(
        {"$ref": f"urn:api#/components/schemas/{name}"}, registry=registry
    ).validate(instance)


def test_the_document_is_valid_openapi_3_1(document: dict) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_is_an_operation(document: dict) -> None:
    operations = {(verb.upper(), path) for path, item in document["paths"].items() for verb in item}
    for route in ROUTES:
        # Path variables in lowerCamel, as the document spells them.
        path = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), route.path.template)
        assert (route.verb, path) in operations, route.full_name
    assert ("GET", "/api/openapi.json") in operations
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_schemas_follow_the_proto3_json_mapping(document: dict) -> None:
    entry = schema(document, "AuditEntry")["properties"]
    assert entry["sequence"]["type"] == "string" and entry["sequence"]["format"] == "int64"
    assert entry["recordedAt"] == {"type": "string", "format": "date-time"}
    assert entry["evidenceHashes"]["type"] == "object"
    assert entry["evidenceHashes"]["additionalProperties"] == {"type": "string"}
    image = schema(document, "Image")["properties"]
    assert image["data"]["type"] == "string" and image["data"]["contentEncoding"] == "base64"
    api_key = schema(document, "ApiKey")["properties"]
    assert "apiKeyId" in api_key and "api_key_id" not in api_key
    assert api_key["scopes"]["type"] == "array"
    assert api_key["scopes"]["items"] == {"$ref": "#/components/schemas/Scope"}
    scope = schema(document, "Scope")
    assert scope["type"] == "string" and "SCOPE_INTERNAL" in scope["enum"]


def test_descriptions_come_from_the_proto_comments(document: dict) -> None:
    assert contract_comments(), "libs/identity/descriptor_set.binpb is missing from the package"
    get_customer = document["paths"]["/api/identity/customers/{customerId}"]["get"]
    assert get_customer["summary"] == "GetCustomer returns one customer"
    assert "CUSTOMER_NOT_FOUND" in get_customer["description"]
    tags = {tag["name"]: tag.get("description", "") for tag in document["tags"]}
    assert "end users" in tags["CustomerService"]
    create = schema(document, "CreateCustomerRequest")["properties"]
    assert "unique per organisation" in create["externalId"]["description"]
    error = schema(document, "Error")["properties"]["error"]["properties"]
    assert "NOT_FOUND" in error["status"]["description"]
    # An open string: the known reasons are documented, not enforced.
    assert "enum" not in error["reason"] and "CUSTOMER_NOT_FOUND" in error["reason"]["description"]


def test_parameters_bodies_security_and_limits(document: dict) -> None:
    list_customers = document["paths"]["/api/customers"]["get"]
    query = {p["name"]: p for p in list_customers["parameters"] if p.get("in") == "query"}
    assert {"pageSize", "pageToken", "tier", "createdAfter"} <= set(query)
    assert query["createdAfter"]["schema"]["format"] == "date-time"
    assert not query["createdAfter"].get("required", False)
    # The CSV exports need both bounds (the black-box probe found them marked optional).
    for path, spec in document["paths"].items():
        if path.endswith(".csv") or "export" in path:
            listed = {p["name"]: p for p in spec["get"]["parameters"] if p.get("in") == "query"}
            assert listed["createdAfter"]["required"] is True, path
            assert listed["createdBefore"]["required"] is True, path
    upgrade = document["paths"]["/api/identity/kyc/{customerId}/upgrade"]["post"]
    assert [p["name"] for p in upgrade["parameters"] if p.get("in") == "path"] == ["customerId"]
    body = upgrade["requestBody"]["content"]["application/json"]["schema"]
    assert "customerId" not in body["properties"] and "targetTier" in body["properties"]
    assert document["paths"]["/api/healthz"]["get"]["security"] == []
    assert document["paths"]["/api/identity/search"]["get"]["x-identity-scope"] == "internal"
    assert set(document["components"]["securitySchemes"]) == {
        "ApiKeyBearer",
        "ApiKeyHeader",
        "SdkSession",
    }
    capture = document["paths"]["/api/identity/document/ktp/capture"]["post"]
    assert capture["x-identity-rate-limit"] == {"requests": 5, "perSeconds": 60, "per": "customer"}
    assert capture["responses"]["429"]["x-identity-reasons"] == ["RATE_LIMITED"]
    assert "Retry-After" in capture["responses"]["429"]["headers"]
    export = document["paths"]["/api/identity/export/customers.csv"]["get"]
    assert list(export["responses"]["200"]["content"]) == ["text/csv"]


def test_every_401_documents_its_challenge_and_body_routes_their_encoding_and_timeout(
    document: dict,
) -> None:
    """Every 401 carries WWW-Authenticate (RFC 7235), so the document says so;
    a route with a body lists 415 UNSUPPORTED_CONTENT_ENCODING and 408
    REQUEST_BODY_TIMEOUT, a route without one neither."""
    assert document["components"]["headers"]["WWWAuthenticate"]["required"] is True
    for (verb, path), operation in operations(document).items():
        responses = operation["responses"]
        if "401" in responses:
            assert "WWW-Authenticate" in responses["401"]["headers"], (verb, path)
        has_body = "requestBody" in operation
        assert ("408" in responses) == has_body, (verb, path)
        if has_body:
            assert responses["408"]["x-identity-reasons"] == ["REQUEST_BODY_TIMEOUT"]
            assert "UNSUPPORTED_CONTENT_ENCODING" in responses["415"]["x-identity-reasons"]
    token = document["paths"]["/api/oauth/token"]["post"]["responses"]
    assert "CLIENT_CREDENTIALS_INVALID" in token["401"]["x-identity-reasons"]


def operations(document: dict) -> dict[tuple[str, str], dict]:
    return {
        (verb.upper(), path): op
        for path, item in document["paths"].items()
        for verb, op in item.items()
    }


def test_the_operations_an_sdk_session_token_opens_are_marked_from_the_route_table(
    document: dict,
) -> None:
    """Exactly the routes the gateway lets an SDK session token call
    (`Route.sdk_session`, sdk_access.check_route) list the SdkSession scheme,
    beside the API key; every other keyed operation takes the API key alone."""
    by_route = {
        (route.verb, re.sub(r"_([a-z])", lambda m: m.group(1).upper(), route.path.template)): route
        for route in ROUTES
    }
    marked = set()
    for key, op in operations(document).items():
        route = by_route.get(key)
        security = op.get("security", document["security"])
        if {"SdkSession": []} in security:
            marked.add(key)
            assert security[:2] == [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}], key
            assert op["x-identity-sdk-session"] is True and "Bearer sdk_" in op["description"]
        else:
            assert "x-identity-sdk-session" not in op, key
        if route is not None and route.scope != "anonymous" and not route.sdk_session:
            assert security == [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}], key
    expected = {key for key, route in by_route.items() if route.sdk_session}
    assert marked == expected
    # The capture routes are among them; minting a session and the partner's
    # customer list are not.
    assert ("POST", "/api/identity/document/ktp/capture") in marked
    assert ("POST", "/api/identity/sdk-sessions") not in marked
    assert ("GET", "/api/customers") not in marked
    scheme = document["components"]["securitySchemes"]["SdkSession"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == (
        "http",
        "bearer",
        "sdk_...",
    )


async def test_the_gateway_serves_the_same_document_and_its_errors_conform(document: dict) -> None:
    async with gateway_client(gateway_settings({})) as client:
        response = await client.get("/api/openapi.json")
        assert response.status_code == 200
        assert response.json() == document
        error = await client.get("/api/nothing")
        health = await client.get("/api/healthz")
    conforms(document, "Error", error.json())
    conforms(document, "GetHealthResponse", health.json())
    with pytest.raises(Exception):  # noqa: B017 - any validation error
        conforms(document, "Error", {"error": {"code": 404}})


def test_the_identity_cli_writes_the_document(tmp_path: Path, document: dict) -> None:
    target = tmp_path / "openapi.json"
    assert identity_main(["openapi", "-o", str(target)]) == 0
    assert json.loads(target.read_text()) == document
