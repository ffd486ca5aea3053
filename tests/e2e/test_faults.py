"""Faults fail narrowly: matching, then audit, killed (SIGKILL) under load on
a live mesh on PostgreSQL.

matching and audit run as their own processes (as `identity up` and the
chart run them) so they can be killed; kyc-tier and the gateway run
in-process in front of them. A few concurrent clients keep creating and
reading customers, listing API keys, listing face enrollments (needs
matching) and reading the audit log (needs audit) while each dependency is
killed. Then:

- routes that do not need the dead service answer 200 throughout, however
  many failures kyc-tier passes on (the gateway's breaker for kyc-tier stays
  closed: an error kyc-tier only propagated is not kyc-tier failing);
- routes that need it answer 503 JSON with Retry-After, naming no address;
- once the services are back: every customer a client was told exists
  exists, nothing else does, and every audit entry the outbox held while
  audit was down is in the chain (the outbox drained, the chain verifies).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from identity_runtime import mesh
from identity_runtime.server import RunningServer
from identity_store.db import Database
from services.audit import models as audit_models
from services.kyc_tier import models as kyc_models
from services.kyc_tier.outbox import wait_until_delivered
from tests.support import start_service
from tests.support.gateway import (
    bearer,
    create_org_and_key,
    gateway_client,
    gateway_settings,
    spec_of,
)
from tests.support.mesh import gateway_tls, mesh_env, postgres_schema
from tests.support.meshauth import caller_metadata, client_tls

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CLIENTS = 4
# Rounds each client runs after the kill: more failures than the breaker's
# threshold (5), so a breaker that counted propagated errors would open.
ROUNDS_AFTER_KILL = 8
ADDRESS = re.compile(r"ipv[46]:|127\.0\.0\.1|\b\d{1,3}(?:\.\d{1,3}){3}:\d+")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Child:
    """A service in its own process, on a fixed port so it can come back."""

    service: mesh.MeshService
    env: Mapping[str, str]
    port: int
    # Plaintext, health only (the service port speaks mutual TLS).
    health_port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def spawn(self) -> None:
        prefix = self.service.env_prefix
        environ = {
            **os.environ,
            **self.env,
            f"{prefix}_HOST": "127.0.0.1",
            f"{prefix}_PORT": str(self.port),
            f"{prefix}_HEALTH_PORT": str(self.health_port),
            f"{prefix}_LOG_FORMAT": "json",
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.service.module],
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def start(self) -> None:
        self.spawn()
        await self._wait_serving()

    async def _wait_serving(self) -> None:
        async with asyncio.timeout(120):
            while True:
                assert self.process is not None and self.process.poll() is None, (
                    f"{self.service.name} exited: {self.log.read_text(errors='replace')[-2000:]}"
                )
                health = f"127.0.0.1:{self.health_port}"
                async with grpc.aio.insecure_channel(health) as channel:
                    try:
                        reply = await health_pb2_grpc.HealthStub(channel).Check(
                            health_pb2.HealthCheckRequest(), timeout=1
                        )
                        if reply.status == health_pb2.HealthCheckResponse.SERVING:
                            return
                    except grpc.aio.AioRpcError:
                        pass
                await asyncio.sleep(0.2)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Outcome:
    route: str
    status: int
    after_kill: bool
    body: dict[str, Any]
    headers: Mapping[str, str]


@dataclass
class Load:
    """Concurrent clients; `kill` runs once every client has done two rounds."""

    http: httpx.AsyncClient
    headers: dict[str, str]
    tag: str
    outcomes: list[Outcome] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    killed: asyncio.Event = field(default_factory=asyncio.Event)

    async def request(self, route: str, method: str, url: str, **kwargs: Any) -> Outcome:
        after_kill = self.killed.is_set()
        response = await self.http.request(method, url, headers=self.headers, **kwargs)
        outcome = Outcome(
            route, response.status_code, after_kill, response.json(), response.headers
        )
        self.outcomes.append(outcome)
        return outcome

    async def round(self, client: int, index: int, customer_id: str) -> None:
        created = await self.request(
            "create customer",
            "POST",
            "/api/customers",
            json={"externalId": f"{self.tag}-{client}-{index}", "fullName": "Siti Rahayu"},
        )
        if created.status == 200:
            self.created.append(created.body["customer"]["customerId"])
        await self.request("get customer", "GET", f"/api/identity/customers/{customer_id}")
        await self.request("list api keys", "GET", "/api/identity/api-keys")
        await self.request(
            "list enrollments", "GET", f"/api/identity/face/enrollments?customerId={customer_id}"
        )
        await self.request("audit log", "GET", "/api/identity/audit-log?pageSize=5")

    async def run(self, customer_id: str, kill: Any) -> None:
        ready = asyncio.Barrier(CLIENTS + 1)

        async def client(number: int) -> None:
            for index in range(2):
                await self.round(number, index, customer_id)
            await ready.wait()  # every client has traffic before the kill...
            await self.killed.wait()  # ...and runs its rounds after it
            for index in range(2, 2 + ROUNDS_AFTER_KILL):
                await self.round(number, index, customer_id)

        async def controller() -> None:
            await ready.wait()
            await asyncio.to_thread(kill)
            self.killed.set()

        await asyncio.gather(controller(), *(client(n) for n in range(CLIENTS)))

    def after_kill(self, route: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.route == route and o.after_kill]


def assert_clean_503(outcome: Outcome) -> None:
    assert outcome.status == 503, (outcome.route, outcome.status, outcome.body)
    error = outcome.body["error"]
    assert error["status"] == "UNAVAILABLE"
    assert error["reason"] in {"DEPENDENCY_UNAVAILABLE", "CIRCUIT_OPEN"}
    assert int(outcome.headers["retry-after"]) >= 1
    text = str(outcome.body)
    assert not ADDRESS.search(text), text
    assert "origin" not in error["metadata"]


async def assert_only_the_dependency_fails(
    http: httpx.AsyncClient, headers: dict[str, str], needs_it: str, customer_id: str
) -> None:
    breaker = http.gateway.clients.breakers["kyc_tier"]
    for _ in range(2 * breaker.failure_threshold):
        response = await http.get(needs_it, headers=headers)
        assert_clean_503(
            Outcome("burst", response.status_code, True, response.json(), response.headers)
        )
    assert breaker.state == "closed"
    assert (
        await http.get(f"/api/identity/customers/{customer_id}", headers=headers)
    ).status_code == 200
    assert (await http.get("/api/identity/api-keys", headers=headers)).status_code == 200


@pytest.fixture
async def faulty_mesh(tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, Child], Any]]:
    with postgres_schema() as url:
        env = mesh_env(url, tmp_path / "data")
        children = {
            service.package: Child(
                service, env, _free_port(), _free_port(), tmp_path / f"{service.name}.log"
            )
            for service in (mesh.MATCHING, mesh.AUDIT)
        }
        servers: list[RunningServer] = []
        try:
            for child in children.values():
                await child.start()
            kyc_env = dict(env)
            for callee in mesh.KYC_TIER.calls:
                target = mesh.BY_NAME[callee]
                # capture-quality, liveness and embedding are not needed by
                # these routes: nothing listens at their addresses.
                address = (
                    children[target.package].address
                    if target.package in children
                    else f"127.0.0.1:{_free_port()}"
                )
                kyc_env[f"KYC_TIER_{target.env_prefix}_ADDRESS"] = address
            kyc_env["KYC_TIER_AUDIT_RELAY_POLL_SECONDS"] = "0.2"
            kyc_tier = await start_service(spec_of(mesh.KYC_TIER), kyc_env)
            servers.append(kyc_tier)
            addresses = {
                "kyc_tier": kyc_tier.address,
                **{package: child.address for package, child in children.items()},
            }
            settings = gateway_settings(addresses, **gateway_tls(env))
            async with gateway_client(settings) as http:
                yield url, children, http
        finally:
            for server in servers:
                await server.stop(0)
            for child in children.values():
                child.stop()


async def test_killing_matching_then_audit_under_load_fails_only_the_routes_that_need_them(
    faulty_mesh,
) -> None:
    url, children, http = faulty_mesh
    org_id, _, secret = create_org_and_key(url, "Faults", ("public", "internal"))
    headers = bearer(secret)
    first = await http.post(
        "/api/customers", headers=headers, json={"externalId": "first", "fullName": "Budi"}
    )
    assert first.status_code == 200, first.text
    customer_id = first.json()["customer"]["customerId"]
    created = [customer_id]

    # --- matching killed under load -----------------------------------------------------------
    load = Load(http, headers, "m")
    await load.run(customer_id, children["matching"].kill)
    created += load.created
    for route in ("create customer", "get customer", "list api keys", "audit log"):
        statuses = {o.status for o in load.outcomes if o.route == route}
        assert statuses == {200}, (route, statuses)
    enrollments = load.after_kill("list enrollments")
    assert len(enrollments) == CLIENTS * ROUNDS_AFTER_KILL
    for outcome in enrollments:
        assert_clean_503(outcome)
    # A run of failures with nothing in between (the clients' 200s above
    # would reset a consecutive count): kyc-tier passes on twice the
    # breaker's threshold of UNAVAILABLEs, yet its breaker at the gateway
    # stays closed and the routes that need only kyc-tier still answer.
    await assert_only_the_dependency_fails(
        http, headers, f"/api/identity/face/enrollments?customerId={customer_id}", customer_id
    )

    # --- audit killed under load (matching still down) ---------------------------------------
    load = Load(http, headers, "a")
    await load.run(customer_id, children["audit"].kill)
    created += load.created
    for route in ("create customer", "get customer", "list api keys"):
        statuses = {o.status for o in load.outcomes if o.route == route}
        assert statuses == {200}, (route, statuses)
    for route in ("audit log", "list enrollments"):
        outcomes = load.after_kill(route)
        assert len(outcomes) == CLIENTS * ROUNDS_AFTER_KILL
        for outcome in outcomes:
            assert_clean_503(outcome)
    await assert_only_the_dependency_fails(
        http, headers, "/api/identity/audit-log?pageSize=5", customer_id
    )

    # --- both back ---------------------------------------------------------------------------
    await children["audit"].start()
    await children["matching"].start()
    database = Database(url)
    try:
        async with asyncio.timeout(60):
            await wait_until_delivered(database)

        async with asyncio.timeout(60):  # until the breakers' next trial call
            while True:
                response = await http.get(
                    f"/api/identity/face/enrollments?customerId={customer_id}", headers=headers
                )
                if response.status_code == 200:
                    break
                assert response.status_code == 503, response.text
                await asyncio.sleep(0.2)

        def read(session: Any) -> tuple[list[str], list[Any], list[str]]:
            customers = session.scalars(
                sa.select(kyc_models.Customer.customer_id).where(
                    kyc_models.Customer.org_id == org_id
                )
            ).all()
            outbox = session.execute(
                sa.select(
                    kyc_models.AuditOutbox.delivered_at, kyc_models.AuditOutbox.rejected_reason
                )
            ).all()
            audited = session.scalars(
                sa.select(audit_models.AuditEntry.subject).where(
                    audit_models.AuditEntry.tenant_id == org_id,
                    audit_models.AuditEntry.action == "customer.create",
                )
            ).all()
            return list(customers), list(outbox), list(audited)

        customers, outbox, audited = await database.run(read)
    finally:
        database.dispose()
    # Every customer a client was told exists exists, and nothing else.
    assert len(created) == len(set(created)) == 1 + 2 * CLIENTS * (2 + ROUNDS_AFTER_KILL)
    assert sorted(customers) == sorted(created)
    # The outbox drained: nothing pending, nothing refused.
    assert outbox and all(d is not None and r is None for d, r in outbox)
    # Every creation's audit entry is in the chain (at least once: the relay
    # delivers at least once, and a kill can land between append and ack).
    assert {f"customer:{c}" for c in created} == set(audited)
    from identity_platform_api.audit.v1 import audit_pb2, audit_pb2_grpc
    from identity_runtime.clients import open_channel

    async with open_channel(children["audit"].address, client_tls("kyc-tier")) as channel:
        report = await audit_pb2_grpc.AuditServiceStub(channel).VerifyChain(
            audit_pb2.VerifyChainRequest(), metadata=caller_metadata(org_id)
        )
    assert report.intact
