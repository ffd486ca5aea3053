"""The one validation layer against the live mesh, on SQLite and PostgreSQL
(where a NUL byte used to reach the driver and answer 500).

Generated, not listed by hand:
- from the gateway's OpenAPI document: for every operation, every string
  field (body, path, query) holding a NUL byte is a 400 whose body names that
  field as the API spells it;
- from the contract descriptors: every RPC of every service, called directly
  with a NUL byte in any string field of its request, answers INVALID_ARGUMENT
  naming the field's proto path (the server interceptor, not the gateway).
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor

from gateway.openapi import UPLOAD_OPENAPI_PATH
from identity_cli.schema import migrate_all
from identity_runtime import mesh as mesh_names
from identity_runtime.authz import required_scope
from identity_runtime.descriptors import service_package
from identity_runtime.status import error_info, status_from_rpc_error
from tests import support
from tests.support.contract_fields import Target, targets, value_type
from tests.support.gateway import bearer, create_org_and_key, error_of
from tests.support.mesh import running_mesh
from tests.support.meshauth import caller_metadata, issuer_for

NUL = "\x00"
MAX_DEPTH = 6


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def live(request, tmp_path_factory) -> Any:
    data_dir = tmp_path_factory.mktemp(f"validation-{request.param}")
    url = None
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'identity.db'}"
        await asyncio.to_thread(migrate_all, url)
    async with running_mesh(data_dir, url) as mesh:
        _, _, secret = await asyncio.to_thread(
            create_org_and_key, mesh.database_url, "Validation Bank", ("public", "internal")
        )
        yield mesh, bearer(secret)


# --- targets from the OpenAPI document -----------------------------------------


@dataclass(frozen=True)
class HttpTarget:
    method: str
    template: str
    where: str  # "path", "query" or "body"
    field: str  # as the API spells it: lowerCamel, [0] for list items, ["k"] for map entries
    body: Any = None

    def __str__(self) -> str:
        return f"{self.method} {self.template} {self.where}:{self.field}"


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def _string_leaves(
    schema: dict[str, Any], document: dict[str, Any], depth: int = 0
) -> Iterator[tuple[str, Any]]:
    """(field path, a JSON value holding NUL at that path) for every string leaf."""
    schema = _resolve(schema, document)
    if depth > MAX_DEPTH:
        return
    if schema.get("type") == "string":
        yield "", NUL
    elif schema.get("type") == "array":
        for path, value in _string_leaves(schema["items"], document, depth + 1):
            yield _join("[0]", path), [value]
    elif schema.get("type") == "object":
        for name, inner in schema.get("properties", {}).items():
            for path, value in _string_leaves(inner, document, depth + 1):
                yield _join(name, path), {name: value}
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for path, value in _string_leaves(extra, document, depth + 1):
                yield _join('["k"]', path), {"k": value}


def _join(name: str, path: str) -> str:
    """`name` followed by the inner path: `name.inner`, `name[0]...`, `name`."""
    if not path or path.startswith("["):
        return f"{name}{path}"
    return f"{name}.{path}"


def http_targets(document: dict[str, Any]) -> list[HttpTarget]:
    found = []
    for template, operations in document["paths"].items():
        if template == UPLOAD_OPENAPI_PATH:
            # A presigned URL has no fields: the whole URL is checked against
            # its signature (403 UPLOAD_URL_INVALID, tested with the uploads).
            continue
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if "$ref" in parameter:
                    continue
                schema = _resolve(parameter["schema"], document)
                if schema.get("type") == "string":
                    found.append(
                        HttpTarget(method.upper(), template, parameter["in"], parameter["name"])
                    )
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                schema = content["application/json"]["schema"]
                for path, body in _string_leaves(schema, document):
                    found.append(HttpTarget(method.upper(), template, "body", path, body))
    return found


def _fill_path(template: str, nul_in: str = "") -> str:
    parts = []
    for segment in template.split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            name = segment[1:-1]
            segment = urllib.parse.quote(NUL if name == nul_in else "x0", safe="")
        parts.append(segment)
    return "/".join(parts)


async def test_every_string_field_of_every_operation_refuses_nul_by_name(live) -> None:
    mesh, headers = live
    document = (await mesh.client.get("/api/openapi.json")).json()
    found = http_targets(document)
    operations = {(t.method, t.template) for t in found}
    assert len(found) > 100 and len(operations) > 30
    assert HttpTarget("POST", "/api/customers", "body", "fullName", {"fullName": NUL}) in found
    failures = []
    for target in found:
        path = _fill_path(target.template, target.field if target.where == "path" else "")
        kwargs: dict[str, Any] = {"headers": headers}
        if target.where == "query":
            path += "?" + urllib.parse.urlencode({target.field: NUL})
        if target.where == "body":
            kwargs["content"] = json.dumps(target.body)
            kwargs["headers"] = {**headers, "Content-Type": "application/json"}
        response = await mesh.client.request(target.method, path, **kwargs)
        # The token route's errors are RFC 6749's shape; the same facts.
        error = error_of(response.json()) if response.content else {}
        named = error.get("metadata", {}).get("field")
        if response.status_code != 400 or named != target.field:
            failures.append((str(target), response.status_code, named, error.get("reason")))
        else:
            assert error["message"].startswith(f"{target.field}: ")
            assert NUL not in response.text and "\\u0000" not in response.text
    assert failures == []


async def test_a_huge_or_too_large_page_size_is_a_400_naming_it(live) -> None:
    mesh, headers = live
    for value in ("9" * 50_000, "501", "-1", "2147483648"):
        response = await mesh.client.get(f"/api/customers?pageSize={value}", headers=headers)
        assert response.status_code == 400, (value[:10], response.text[:300])
        assert response.json()["error"]["metadata"]["field"] == "pageSize"
    # The same in a JSON body (Python's json module would refuse the literal).
    body = '{"customerId": "c", "bundle": {"frames": [{"offsetMs": ' + "9" * 50_000 + "}]}}"
    response = await mesh.client.post(
        "/api/identity/auth/step-up",
        content=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error"]["metadata"]["field"] == "bundle.frames[0].offsetMs"
    response = await mesh.client.get("/api/customers?pageSize=500", headers=headers)
    assert response.status_code == 200, response.text[:300]


# --- every RPC, called directly ---------------------------------------------------


def _grpc_targets() -> list[Target]:
    """The first string field of each RPC's request, and every top-level one."""
    chosen: dict[tuple[str, str], Target] = {}
    for target in targets():
        if value_type(target) == FieldDescriptor.TYPE_STRING:
            chosen.setdefault((target.rpc, target.proto_path), target)
    return list(chosen.values())


async def test_every_rpc_refuses_nul_in_any_string_field_with_the_field_path(live) -> None:
    mesh, _ = live
    channels = {
        package: support.channel(server, credentials=False)
        for package, server in mesh.servers.items()
    }
    failures = []
    found = _grpc_targets()
    assert len({t.rpc for t in found}) > 40
    try:
        for target in found:
            service = target.method.containing_service
            package = service_package(service.full_name)
            if package not in channels:
                continue  # served by the gateway itself (health)
            rpc = f"/{service.full_name}/{target.method.name}"
            issuer = issuer_for(mesh_names.BY_PACKAGE[package].name)
            if required_scope(target.method) == "mesh" and not mesh_names.may_call_as_itself(
                issuer, rpc
            ):
                continue  # no caller of the mesh may call it (kyc-tier's unary exports)
            request = target.message_with("a" + NUL)
            kind = channels[package].unary_stream if target.method.server_streaming else None
            call = (kind or channels[package].unary_unary)(
                rpc,
                request_serializer=type(request).SerializeToString,
                response_deserializer=lambda raw: raw,
            )
            # A mesh caller with every scope, so only validation can refuse.
            metadata = caller_metadata(
                "org-validation",
                scopes=("public", "internal", "mesh"),
                issuer=issuer,
            )
            try:
                if target.method.server_streaming:
                    async for _ in call(request, timeout=10, metadata=metadata):
                        pass
                else:
                    await call(request, timeout=10, metadata=metadata)
                failures.append((str(target), "OK", ""))
            except grpc.aio.AioRpcError as exc:
                info = error_info(status_from_rpc_error(exc))
                named = info.metadata.get("field") if info else None
                if exc.code() != grpc.StatusCode.INVALID_ARGUMENT or named != target.proto_path:
                    failures.append((str(target), exc.code().name, named))
    finally:
        for channel in channels.values():
            await channel.close()
    assert failures == []
    assert {mesh_names.BY_PACKAGE[p].name for p in channels} >= {"kyc-tier", "audit"}
