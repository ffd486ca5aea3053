"""Helpers for the gateway tests: the real mesh, partner keys, a gateway client."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from gateway.app import UPLOAD_PREFIX, create_app
from gateway.openapi import UPLOAD_OPENAPI_PATH, build_document
from gateway.openapi_errors import http_status, operation_errors
from gateway.routing import RouteTable, build_routes
from gateway.settings import GatewaySettings, load
from identity_runtime import mesh
from identity_runtime.server import RunningServer, ServiceSpec
from identity_store.db import Database
from tests.support import TEST_PEPPER
from tests.support.meshauth import service_env


def spec_of(service: mesh.MeshService) -> ServiceSpec[Any, Any]:
    return importlib.import_module(f"{service.module}.service").SPEC


async def start_mesh(database_url: str, data_dir: Path) -> dict[str, RunningServer]:
    """All six services on free ports against one database, as `identity up`
    runs them; kyc-tier pointed at the other five. Their local secrets go to
    `data_dir` (a pytest temporary directory, so nothing outlives the run)."""
    from tests.support.mesh import mesh_env, start_services

    return await start_services(mesh_env(database_url, data_dir))


async def stop_all(servers: Mapping[str, RunningServer]) -> None:
    for server in servers.values():
        await server.stop(0)


def create_org_and_key(
    database_url: str, org_name: str, scopes: tuple[str, ...]
) -> tuple[str, str, str]:
    """A new organisation and an API key for it: (org_id, api_key_id, secret)."""
    from services.kyc_tier.partners import PartnerDirectory, create_org

    database = Database(database_url)
    try:
        with database.transaction() as session:
            org_id = create_org(session, org_name)
            record, secret = PartnerDirectory(TEST_PEPPER).create_api_key(
                session, org_id, f"{org_name} key", scopes
            )
    finally:
        database.dispose()
    return org_id, record.api_key_id, secret


async def internal_key(database_url: str, org_name: str) -> str:
    """The secret of an API key with the public and internal scopes, of a new
    organisation (enough to create and revoke OAuth clients)."""
    _, _, secret = await asyncio.to_thread(
        create_org_and_key, database_url, org_name, ("public", "internal")
    )
    return secret


def add_key(database_url: str, org_id: str, scopes: tuple[str, ...]) -> tuple[str, str]:
    from services.kyc_tier.partners import PartnerDirectory

    database = Database(database_url)
    try:
        with database.transaction() as session:
            record, secret = PartnerDirectory(TEST_PEPPER).create_api_key(
                session, org_id, "extra key", scopes
            )
    finally:
        database.dispose()
    return record.api_key_id, secret


def gateway_settings(addresses: Mapping[str, str], **overrides: str) -> GatewaySettings:
    """Gateway settings pointing at `addresses` (proto package -> host:port)."""
    environ = {
        f"GATEWAY_{package.upper()}_ADDRESS": address for package, address in addresses.items()
    }
    environ["GATEWAY_LOG_FORMAT"] = "console"
    # Plaintext unless the overrides turn mesh TLS on (mesh_tls="on", ...: see mesh.gateway_tls).
    environ.update(service_env("GATEWAY"))
    environ.update({f"GATEWAY_{key.upper()}": value for key, value in overrides.items()})
    return load(environ)


def addresses_of(servers: Mapping[str, RunningServer]) -> dict[str, str]:
    return {package: server.address for package, server in servers.items()}


@contextlib.asynccontextmanager
async def gateway_client(settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    """The real gateway app behind httpx's ASGI transport; `client.gateway` is the Gateway."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway.test", timeout=30
    ) as client:
        client.gateway = app.state.gateway  # type: ignore[attr-defined]
        try:
            yield client
        finally:
            await app.state.gateway.close()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def assert_error(response: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    """A well-formed JSON error with this HTTP status and reason; returns its body."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == status
    assert error["reason"] == reason, error
    assert error["domain"] == "identity-platform"
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["metadata"], dict)
    assert error["requestId"] == response.headers["x-request-id"]
    if status == 401:
        # RFC 7235 section 3.1: every 401 carries a challenge.
        assert response.headers.get("www-authenticate"), (reason, dict(response.headers))
    return error


def assert_token_error(
    response: httpx.Response, status: int, error: str, reason: str
) -> dict[str, Any]:
    """An error of the OAuth token route as RFC 6749 section 5.2 shapes it
    (`error` a string code, `error_description` printable ASCII but '"' and
    '\\'), with the platform's reason and request id; returns its body."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error, body
    assert re.fullmatch(r"[\x20-\x21\x23-\x5b\x5d-\x7e]+", body["error_description"]), body
    assert body["reason"] == reason, body
    assert isinstance(body["metadata"], dict)
    assert body["request_id"] == response.headers["x-request-id"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    if status == 401:
        assert (
            response.headers["www-authenticate"]
            == 'Basic realm="identity-platform", charset="UTF-8"'
        )
    return body


def error_of(body: dict[str, Any]) -> dict[str, Any]:
    """An error body's reason, message and metadata, whichever shape it has:
    the platform's (`error` an object) or the OAuth token route's (RFC 6749
    section 5.2: `error` a string code beside `error_description`)."""
    error = body.get("error", {})
    if not isinstance(error, str):
        return dict(error)
    return {
        "reason": body.get("reason"),
        "message": body.get("error_description", ""),
        "metadata": body.get("metadata", {}),
    }


def assert_documented(response: httpx.Response) -> None:
    """The error answered is one the OpenAPI document lists, with its status,
    for the request's operation (gateway/openapi_errors.py)."""
    request = response.request
    reason = error_of(response.json())["reason"]
    if request.url.path.startswith(UPLOAD_PREFIX):
        assert (response.status_code, reason) in documented_upload_answers(), ("upload", reason)
        return
    route, _ = _routes().match(request.method, request.url.path)
    listed = {(http_status(c, r), r) for c, r in operation_errors(route)}
    assert (response.status_code, reason) in listed, (route.full_name, reason)


def documented_upload_answers() -> set[tuple[int, str]]:
    """(HTTP status, reason) of each refusal the OpenAPI document lists for the
    gateway's own presigned upload route (PUT)."""
    operation = _document()["paths"][UPLOAD_OPENAPI_PATH]["put"]
    return {
        (int(status), reason)
        for status, answer in operation["responses"].items()
        for reason in answer.get("x-identity-reasons", ())
    }


@functools.cache
def _document() -> dict[str, Any]:
    return build_document(_routes())


@functools.cache
def _routes() -> RouteTable:
    return RouteTable(build_routes(), mesh.BY_PACKAGE)


def console_reachable_routes() -> list[tuple[str, str]]:
    """(HTTP method, a path it matches) of every route a console session can
    reach (a console role), path variables filled with a placeholder."""
    found = []
    for route in _routes():
        if not route.console_role:
            continue
        path = re.sub(r"\{[^}]*\}", "x1", route.path.template)
        assert _routes().match(route.verb, path)[0] is route, path
        found.append((route.verb, path))
    return found
