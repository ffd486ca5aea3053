"""The whole mesh in-process for end-to-end tests: six real services on free
ports against one database, the real gateway in front, secrets made the way
`identity up` makes them."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from identity_cli.local_secrets import local_settings
from identity_cli.schema import migrate_all
from identity_runtime import mesh
from identity_runtime.server import RunningServer, ServiceSpec
from identity_store.db import Database
from identity_store.scratch import reachable, scratch_schema
from services.kyc_tier import models
from tests.support import POSTGRES_URL, TEST_PEPPER, start_service, unavailable
from tests.support.gateway import gateway_client, gateway_settings
from tests.support.meshauth import service_env


def spec_of(service: mesh.MeshService) -> ServiceSpec[Any, Any]:
    return importlib.import_module(f"{service.module}.service").SPEC


def mesh_env(database_url: str, data_dir: Path, *, tls: bool = True) -> dict[str, str]:
    """Every service's settings for one machine (as `identity up` sets them), with
    the tests' token keys and (with `tls`) certificates from the tests' one CA;
    the gateway's are under GATEWAY_ (see `gateway_tls`)."""
    env = local_settings(data_dir, database_url)
    # Keys made by the tests' helpers use the tests' pepper.
    env["KYC_TIER_API_KEY_PEPPER"] = TEST_PEPPER
    for prefix in [*(s.env_prefix for s in mesh.SERVICES), "GATEWAY"]:
        env[f"{prefix}_LOG_FORMAT"] = "console"
        # Tokens and TLS: the tests' keys and CA (tests.support.meshauth), not the data dir's.
        for name in [n for n in env if n.startswith(f"{prefix}_MESH_")]:
            del env[name]
        env.update(service_env(prefix, tls=tls))
    return env


def gateway_tls(env: Mapping[str, str]) -> dict[str, str]:
    """The gateway's mesh TLS settings in `env`, as `gateway_settings` overrides."""
    return {
        name.removeprefix("GATEWAY_").lower(): value
        for name, value in env.items()
        if name.startswith("GATEWAY_MESH_TLS")
    }


async def start_services(env: Mapping[str, str]) -> dict[str, RunningServer]:
    """All six services on free ports; callers pointed at their callees."""
    servers: dict[str, RunningServer] = {}
    order = [s for s in mesh.SERVICES if not s.calls] + [s for s in mesh.SERVICES if s.calls]
    for service in order:
        service_env = dict(env)
        for callee in service.calls:
            target = mesh.BY_NAME[callee]
            service_env[f"{service.env_prefix}_{target.env_prefix}_ADDRESS"] = servers[
                target.package
            ].address
        servers[service.package] = await start_service(spec_of(service), service_env)
    return servers


@contextlib.contextmanager
def postgres_schema() -> Any:
    """A fresh migrated PostgreSQL schema for a whole test module."""
    problem = reachable(POSTGRES_URL)
    if problem:
        unavailable(f"PostgreSQL at {POSTGRES_URL}", problem)
    with scratch_schema(POSTGRES_URL, prefix="e2e", prepare=migrate_all) as url:
        yield url


def module_database(engine: str, scratch: Path) -> Iterator[str]:
    """A migrated database for a whole test module, by `engine`: a fresh
    PostgreSQL schema ("postgres"), else SQLite in the `scratch` directory.
    For a module fixture parametrised over both engines."""
    if engine == "postgres":
        with postgres_schema() as url:
            yield url
        return
    url = f"sqlite:///{scratch / 'identity.db'}"
    migrate_all(url)
    yield url


@dataclass
class E2eMesh:
    database_url: str
    servers: dict[str, RunningServer]
    client: httpx.AsyncClient
    database: Database = field(init=False)

    def __post_init__(self) -> None:
        self.database = Database(self.database_url)

    @property
    def kyc_tier(self) -> Any:
        return self.servers[mesh.KYC_TIER.package].core

    async def drain_audit(self) -> None:
        """Deliver every queued audit entry now."""
        from services.kyc_tier.outbox import wait_until_delivered

        await self.kyc_tier.relay.flush()
        await wait_until_delivered(self.database)

    async def tier_events(self, customer_id: str) -> list[models.TierEvent]:
        def read(session: Any) -> list[models.TierEvent]:
            query = (
                select(models.TierEvent)
                .where(models.TierEvent.customer_id == customer_id)
                .order_by(models.TierEvent.created_at)
            )
            return list(session.scalars(query))

        return await self.database.run(read)

    async def set_evidence_secret(self, org_id: str) -> bytes:
        import secrets

        secret = secrets.token_bytes(32)

        def store(session: Any) -> None:
            org = session.get(models.Org, org_id)
            self.kyc_tier.vault.store_org_secret(session, org, secret)

        await self.database.run(store)
        return secret


@contextlib.asynccontextmanager
async def running_mesh(
    data_dir: Path, database_url: str | None = None, extra_env: Mapping[str, str] | None = None
) -> AsyncIterator[E2eMesh]:
    with contextlib.ExitStack() as stack:
        url = database_url or stack.enter_context(postgres_schema())
        servers = await start_services({**mesh_env(url, data_dir), **(extra_env or {})})
        try:
            addresses = {package: server.address for package, server in servers.items()}
            settings = gateway_settings(addresses, **gateway_tls(mesh_env(url, data_dir)))
            async with gateway_client(settings) as client:
                e2e = E2eMesh(url, servers, client)
                try:
                    yield e2e
                finally:
                    e2e.database.dispose()
        finally:
            for server in servers.values():
                await server.stop(0)
