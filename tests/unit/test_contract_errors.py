"""Errors per operation: what each RPC declares (`option (identity.common.v1.errors)`)
is what the OpenAPI document lists, and the declarations cover the catalogue.

The cross-check reads every reason a service's code names (string literals
that are ErrorReason names) and requires each to be declared by an RPC of a
service that can answer it (its own, or kyc-tier for the reasons it passes on
from the services it calls) or to be one of the reasons every call can meet.
A reason added to the code and not to the contract fails here; the e2e
schemathesis run checks the other way, that what the live mesh answers is
listed for the operation (tests/e2e/test_schemathesis.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from google.protobuf.descriptor import MethodDescriptor

from gateway.comments import contract_comments
from gateway.errors import HTTP_STATUS_BY_CODE
from gateway.openapi import HEALTH_RPC, build_document
from gateway.openapi_errors import declared_errors, http_status, known_reasons, operation_errors
from gateway.routing import RouteTable, build_routes
from identity_runtime import mesh
from identity_runtime.descriptors import service_package, services

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ROUTES = RouteTable(build_routes(), mesh.BY_PACKAGE)
DOCUMENT = build_document(ROUTES)
# Reasons a service may raise on any call or that never leave the mesh as a
# partner-facing answer (the caller-token checks, start-up, internal failure).
EVERY_CALL = {
    "INVALID_FIELD",
    "MALFORMED_REQUEST",
    "INTERNAL",
    "NOT_READY",
    "DEPENDENCY_UNAVAILABLE",
    "CIRCUIT_OPEN",
    "DEADLINE_EXCEEDED",
    "CALLER_UNAUTHENTICATED",
    "CALLER_NOT_ALLOWED",
    "SCOPE_INSUFFICIENT",
    "API_KEY_MISSING",
    "API_KEY_INVALID",
    "RATE_LIMITED",
    "PAYLOAD_TOO_LARGE",
    "NOT_IMPLEMENTED",
    "TENANT_MISSING",
}
# Names that are also verification reasons (`Reason.code` in a 200 answer, or
# a Face Match submission's failure), not errors, where the code uses them so.
VERDICT_REASONS = {
    "capture_quality": {"FACE_NOT_FOUND"},
    "liveness": {"FACE_NOT_FOUND"},
    "face_match": {"FACE_NOT_FOUND", "IMAGE_EMPTY", "IMAGE_TOO_LARGE"},
}
# kyc-tier answers for the services it calls: their reasons count as its own.
PASSED_ON = {"kyc_tier": ("capture_quality", "liveness", "embedding", "matching", "audit")}


def _methods(package: str) -> list[MethodDescriptor]:
    return [
        method
        for service in services()
        if service_package(service.full_name) == package
        for method in service.methods
    ]


def _declared(package: str) -> set[str]:
    return {reason for m in _methods(package) for _, reason in declared_errors(m)}


def _named_in_code(package: str) -> set[str]:
    known = set(known_reasons())
    names: set[str] = set()
    for path in (ROOT / "services" / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        names |= set(re.findall(r'"([A-Z][A-Z0-9_]{3,})"', path.read_text())) & known
    return names


def test_declared_reasons_and_codes_are_known() -> None:
    known = set(known_reasons())
    for route in ROUTES:
        for code, reason in declared_errors(route.method):
            assert code in HTTP_STATUS_BY_CODE and code != "OK", (route.full_name, code)
            assert reason in known, (route.full_name, reason)


@pytest.mark.parametrize("package", [s.package for s in mesh.SERVICES])
def test_every_reason_the_code_names_is_declared(package: str) -> None:
    declared = _declared(package)
    for callee in PASSED_ON.get(package, ()):
        declared |= _declared(callee)
    undeclared = (
        _named_in_code(package) - declared - EVERY_CALL - VERDICT_REASONS.get(package, set())
    )
    assert not undeclared, f"{package}: reasons raised but declared by no RPC: {undeclared}"


def test_each_rpc_declares_a_reason_under_one_code() -> None:
    """A reason is one answer a client can rely on: one gRPC code, so one HTTP
    status (PutObject declared UPLOADS_CLOSED as FAILED_PRECONDITION, 400,
    while face-match answered ABORTED, the 409 docs/face-match.md promises)."""
    for service in services():
        for method in service.methods:
            codes: dict[str, set[str]] = {}
            for code, reason in declared_errors(method):
                codes.setdefault(reason, set()).add(code)
            doubled = {reason: c for reason, c in codes.items() if len(c) > 1}
            assert not doubled, (method.full_name, doubled)


def test_uploads_closed_is_409_wherever_it_is_declared() -> None:
    declared = {
        (method.name, code)
        for method in _methods("face_match")
        for code, reason in declared_errors(method)
        if reason == "UPLOADS_CLOSED"
    }
    assert {name for name, _ in declared} >= {"PutObject", "AuthorizeUpload"}
    assert {code for _, code in declared} == {"ABORTED"}
    assert http_status("ABORTED", "UPLOADS_CLOSED") == 409


def test_rpcs_honouring_an_idempotency_key_declare_its_refusals() -> None:
    # `@idempotent(x_pb2.NameResponse)` on the servicer method of RPC `Name`.
    honouring = {
        name
        for path in (ROOT / "services" / "kyc_tier").glob("*servicer.py")
        for name in re.findall(r"@idempotent\(\w+_pb2\.(\w+)Response\)", path.read_text())
    }
    methods = {m.name: m for m in _methods("kyc_tier")}
    assert honouring and honouring <= set(methods)
    for name in honouring:
        declared = set(declared_errors(methods[name]))
        assert {
            ("ALREADY_EXISTS", "IDEMPOTENCY_KEY_REUSED"),
            ("ABORTED", "IDEMPOTENCY_KEY_IN_PROGRESS"),
        } <= declared, name


def test_each_operation_lists_exactly_its_statuses_and_reasons() -> None:
    operations = {
        operation["operationId"]: operation
        for item in DOCUMENT["paths"].values()
        for operation in item.values()
    }
    for route in ROUTES:
        responses = operations[f"{route.service.name}_{route.method.name}"]["responses"]
        assert "default" not in responses, route.full_name
        listed = {
            (status, reason)
            for status, response in responses.items()
            for reason in response.get("x-identity-reasons", [])
        }
        expected = {(str(http_status(c, r)), r) for c, r in operation_errors(route)}
        if route.full_name == HEALTH_RPC:
            # Its 503 is the health report itself, not an Error.
            expected = {(s, r) for s, r in expected if s != "503"}
        assert listed == expected, route.full_name


def test_declarations_reach_the_document() -> None:
    capture = DOCUMENT["paths"]["/api/identity/document/ktp/capture"]["post"]["responses"]
    assert "NONCE_REPLAYED" in capture["409"]["x-identity-reasons"]
    assert "CHALLENGE_EXPIRED" in capture["400"]["x-identity-reasons"]
    assert capture["429"]["x-identity-reasons"] == ["RATE_LIMITED"]
    create = DOCUMENT["paths"]["/api/customers"]["post"]["responses"]
    assert set(create["409"]["x-identity-reasons"]) == {
        "CUSTOMER_ALREADY_EXISTS",
        "IDEMPOTENCY_KEY_REUSED",
        "IDEMPOTENCY_KEY_IN_PROGRESS",
    }
    # Not rate-limited, but a refused credential past the address's failures is 429.
    assert create["429"]["x-identity-reasons"] == ["RATE_LIMITED"]
    health = DOCUMENT["paths"]["/api/healthz"]["get"]["responses"]
    # Anonymous: no key needed, but one that is presented must be valid.
    assert health["401"]["x-identity-reasons"] == [
        "API_KEY_INVALID",
        "ACCESS_TOKEN_INVALID",
        "ACCESS_TOKEN_REVOKED",
        "SDK_SESSION_INVALID",
    ]
    # ...and an SDK session token opens only the capture routes.
    assert health["403"]["x-identity-reasons"] == ["SDK_SESSION_ROUTE_FORBIDDEN"]
    ktp = DOCUMENT["paths"]["/api/identity/document/ktp/capture"]["post"]["responses"]
    assert {"SDK_SESSION_CUSTOMER_MISMATCH", "ORIGIN_NOT_ALLOWED"} <= set(
        ktp["403"]["x-identity-reasons"]
    )
    assert "SDK_SESSION_ROUTE_FORBIDDEN" not in ktp["403"]["x-identity-reasons"]
    internal = DOCUMENT["paths"]["/api/identity/org/settings"]["get"]["responses"]
    # ...and, for a console session, the admin role; an SDK token is refused
    # as such before the scope.
    assert internal["403"]["x-identity-reasons"] == [
        "SCOPE_INSUFFICIENT",
        "ADMIN_REQUIRED",
        "SDK_SESSION_ROUTE_FORBIDDEN",
    ]
    token = DOCUMENT["paths"]["/api/oauth/token"]["post"]["responses"]
    assert "SDK_SESSION_INVALID" not in token["401"]["x-identity-reasons"]
    register = DOCUMENT["paths"]["/api/identity/devices/register"]["post"]["responses"]
    assert register["404"]["x-identity-reasons"] == ["CUSTOMER_NOT_FOUND"]


def test_an_rpc_whose_comment_names_errors_declares_them() -> None:
    comments = contract_comments()
    for route in ROUTES:
        comment = comments.get(f"{route.service.full_name}.{route.method.name}", "")
        if "Errors:" in comment:
            assert declared_errors(route.method), route.full_name
