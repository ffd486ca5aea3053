"""Helpers for tests: real servers on port 0, real databases, the vendored test data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import grpc
import pytest

from identity_runtime.server import RunningServer, ServiceSpec, start
from identity_runtime.settings import load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
# Photos, spoof samples, the synthetic KTP and the product's endpoint table
# (sources and licences in tests/data/README.md).
TESTDATA = REPO_ROOT / "tests" / "data"
POSTGRES_URL = os.environ.get(
    "IDENTITY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

# A pepper for tests only.
TEST_PEPPER = "test-pepper-0123456789abcdef0123456789abcdef"


def kyc_tier_env(database_url: str, addresses: Mapping[str, str] | None = None) -> dict[str, str]:
    """What kyc-tier needs to start: database, secrets, an inline KEK keyring;
    `addresses` maps proto package -> host:port of the services it calls."""
    from identity_crypto.keyring import generate

    env = {
        "KYC_TIER_DATABASE_URL": database_url,
        "KYC_TIER_API_KEY_PEPPER": TEST_PEPPER,
        "KYC_TIER_PII_INDEX_KEY": TEST_PEPPER,
        "KYC_TIER_KEK_KEYRING": generate("kek-test").to_json(),
    }
    for package, address in (addresses or {}).items():
        env[f"KYC_TIER_{package.upper()}_ADDRESS"] = address
    from tests.support.meshauth import service_env

    env.update(service_env("KYC_TIER"))
    return env


def unavailable(what: str, problem: str) -> NoReturn:
    """A server the suite needs is not running: a failure, never a skip
    (`tools/dev test` starts PostgreSQL and Redis and builds the Triton environment)."""
    pytest.fail(f"{what} is not available: {problem} (`tools/dev test` provides it)")


async def start_service(
    spec: ServiceSpec[Any, Any], env: Mapping[str, str] | None = None
) -> RunningServer:
    """Start a service in-process on a free port with settings from `env`; it
    trusts the caller tokens of tests.support.meshauth."""
    from tests.support.meshauth import service_env

    environ = {f"{spec.env_prefix}_PORT": "0", f"{spec.env_prefix}_LOG_FORMAT": "console"}
    environ.update(service_env(spec.env_prefix))
    environ.update(env or {})
    settings = load_settings(spec.settings_class, spec.env_prefix, environ)
    return await start(spec, settings)


def channel(
    server: RunningServer, org_id: str = "org_test", *, credentials: bool = True
) -> grpc.aio.Channel:
    """A channel to `server` (mutual TLS when it serves it); each call without
    credentials of its own gets a fresh caller token for `org_id`
    (tests.support.meshauth), unless `credentials` is False."""
    from identity_runtime.clients import open_channel
    from tests.support.meshauth import CallerTokens, client_tls, issuer_for

    interceptors = [CallerTokens(server.name, org_id)] if credentials else []
    # Over mutual TLS the client's certificate is that of the token's issuer.
    tls = client_tls(issuer_for(server.name)) if server.settings.mesh_tls == "on" else None
    return open_channel(server.address, tls, interceptors=interceptors)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def cli_errors(stderr: str) -> list[str]:
    """What the identity command itself wrote to `stderr`: its own lines
    ("identity <command>: ...") and any traceback's first line, without the
    log lines of in-process services a test runs beside it (whatever their
    format: they log to stderr too)."""
    return [
        line for line in stderr.strip().splitlines() if line.startswith(("identity ", "Traceback"))
    ]
