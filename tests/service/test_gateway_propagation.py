"""Request id, caller identity, trace context and deadline: gateway -> service -> downstream.

Two real gRPC servers built with identity_runtime.server.start implement real
contract services: a kyc-tier whose CustomerService.GetCustomer calls
AuditService.QueryEntries through the ClientFactory (and the real
ApiKeyService, which the gateway authenticates against), and an audit that
records what each call carried.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from identity_cli.schema import migrate_all
from identity_platform_api.audit.v1 import audit_pb2, audit_pb2_grpc
from identity_platform_api.kyc_tier.v1 import (
    api_keys_pb2_grpc,
    customers_pb2,
    customers_pb2_grpc,
    resources_pb2,
)
from identity_runtime import context as call_context
from identity_runtime.errors import DomainError, NotFound
from identity_runtime.server import Core, ServiceSpec
from identity_runtime.status import remote_error
from services.audit.settings import AuditSettings
from services.kyc_tier.bootstrap import build as build_kyc_tier
from services.kyc_tier.servicer import ApiKeyServicer
from services.kyc_tier.settings import KycTierSettings
from tests.support import kyc_tier_env, start_service
from tests.support.gateway import (
    assert_error,
    bearer,
    create_org_and_key,
    gateway_client,
    gateway_settings,
)
from tests.support.mesh import mesh_env

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
GATEWAY_DEADLINE = 3.0


@dataclass
class Seen:
    """What one server saw of one call."""

    metadata: dict[str, str]
    request_id: str
    org_id: str
    actor: str
    scopes: tuple[str, ...]
    # Absolute time.monotonic() by which the call had to finish.
    deadline: float
    # time.monotonic() when the server recorded the call (after it arrived).
    at: float


@dataclass
class Recorder:
    seen: list[Seen] = field(default_factory=list)
    # When set, the call waits for it: a downstream slower than any deadline.
    hold: asyncio.Event | None = None
    error: DomainError | None = None

    def record(self, context: grpc.aio.ServicerContext) -> None:
        ctx = call_context.current()
        assert ctx is not None
        remaining = context.time_remaining()
        now = time.monotonic()
        self.seen.append(
            Seen(
                metadata={k: v for k, v in context.invocation_metadata() if isinstance(v, str)},
                request_id=ctx.request_id,
                org_id=ctx.org_id,
                actor=ctx.actor,
                scopes=ctx.scopes,
                deadline=now + (remaining if remaining is not None else float("inf")),
                at=now,
            )
        )


class RecordingAudit(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, recorder: Recorder):
        self.recorder = recorder

    async def QueryEntries(
        self, request: audit_pb2.QueryEntriesRequest, context: Any
    ) -> audit_pb2.QueryEntriesResponse:
        self.recorder.record(context)
        if self.recorder.hold is not None:
            await self.recorder.hold.wait()
        if self.recorder.error is not None:
            raise self.recorder.error
        return audit_pb2.QueryEntriesResponse()


class AuditedCustomers(customers_pb2_grpc.CustomerServiceServicer):
    """GetCustomer that consults the audit service downstream."""

    def __init__(self, core: Any, recorder: Recorder):
        self.core = core
        self.recorder = recorder

    async def GetCustomer(
        self, request: customers_pb2.GetCustomerRequest, context: Any
    ) -> customers_pb2.GetCustomerResponse:
        self.recorder.record(context)
        stub = self.core.clients.stub("audit", audit_pb2_grpc.AuditServiceStub)
        try:
            await stub.QueryEntries(
                audit_pb2.QueryEntriesRequest(subject=f"customer:{request.customer_id}")
            )
        except grpc.aio.AioRpcError as exc:
            raise remote_error(exc, "audit") from None
        return customers_pb2.GetCustomerResponse(
            customer=resources_pb2.Customer(customer_id=request.customer_id)
        )


class _AuditCore(Core):
    pass


async def _build_audit(_settings: AuditSettings) -> Core:
    return _AuditCore()


@pytest.fixture(scope="module")
def recorders() -> dict[str, Recorder]:
    return {"kyc_tier": Recorder(), "audit": Recorder()}


@pytest.fixture(autouse=True)
def _fresh(recorders: dict[str, Recorder]) -> None:
    for recorder in recorders.values():
        recorder.seen.clear()
        recorder.hold = None
        recorder.error = None


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('gateway-propagation') / 'identity.db'}"
    migrate_all(url)
    return url


@pytest.fixture(scope="module")
async def servers(
    recorders: dict[str, Recorder], database: str, tmp_path_factory: pytest.TempPathFactory
):
    audit_spec = ServiceSpec(
        name="audit",
        settings_class=AuditSettings,
        env_prefix="AUDIT",
        service_names=[audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name],
        build=_build_audit,
        servicers=lambda core, settings: [
            (audit_pb2_grpc.add_AuditServiceServicer_to_server, RecordingAudit(recorders["audit"]))
        ],
    )
    audit = await start_service(
        audit_spec, mesh_env(database, tmp_path_factory.mktemp("propagation-secrets"), tls=False)
    )
    kyc_spec = ServiceSpec(
        name="kyc-tier",
        settings_class=KycTierSettings,
        env_prefix="KYC_TIER",
        service_names=[
            "identity.kyc_tier.v1.ApiKeyService",
            "identity.kyc_tier.v1.CustomerService",
        ],
        build=build_kyc_tier,
        servicers=lambda core, settings: [
            (api_keys_pb2_grpc.add_ApiKeyServiceServicer_to_server, ApiKeyServicer(core)),
            (
                customers_pb2_grpc.add_CustomerServiceServicer_to_server,
                AuditedCustomers(core, recorders["kyc_tier"]),
            ),
        ],
    )
    kyc_tier = await start_service(kyc_spec, kyc_tier_env(database, {"audit": audit.address}))
    yield {"audit": audit, "kyc_tier": kyc_tier}
    await kyc_tier.stop(0)
    await audit.stop(0)


@pytest.fixture(scope="module")
def partner(database: str) -> tuple[str, str, str]:
    # Internal: the recording kyc-tier reads the audit log (an internal-scope RPC).
    return create_org_and_key(database, "Propagation Org", ("public", "internal"))


@pytest.fixture(scope="module")
async def client(servers):
    addresses = {"kyc_tier": servers["kyc_tier"].address, "audit": servers["audit"].address}
    async with gateway_client(
        gateway_settings(addresses, default_deadline_seconds=str(GATEWAY_DEADLINE))
    ) as http:
        yield http


async def test_request_id_identity_and_trace_reach_the_downstream_service(
    client, recorders, partner
) -> None:
    org_id, api_key_id, secret = partner
    traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    response = await client.get(
        "/api/identity/customers/cus_42",
        headers={
            **bearer(secret),
            "X-Request-Id": "partner-req-42",
            "traceparent": traceparent,
            "X-Identity-Org": "org_spoofed",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"customer": response.json()["customer"]}
    assert response.json()["customer"]["customerId"] == "cus_42"
    assert response.headers["x-request-id"] == "partner-req-42"
    for hop in ("kyc_tier", "audit"):
        (seen,) = recorders[hop].seen
        assert seen.metadata["x-request-id"] == "partner-req-42", hop
        assert (seen.request_id, seen.org_id, seen.actor) == (
            "partner-req-42",
            org_id,
            f"api_key:{api_key_id}",
        ), hop
        # The identity travels only in the caller token each hop signs: the
        # gateway's for kyc-tier, kyc-tier's own (which adds "mesh") for audit.
        assert "x-identity-org" not in seen.metadata, hop
        assert seen.metadata["authorization"].startswith("Bearer "), hop
        assert seen.scopes == (
            ("internal", "public") if hop == "kyc_tier" else ("internal", "mesh", "public")
        ), hop
        # One trace from the caller through every hop, each with its own span.
        version, trace_id, parent_span, _flags = seen.metadata["traceparent"].split("-")
        assert (version, trace_id) == ("00", TRACE_ID), hop
        assert parent_span != "00f067aa0ba902b7", hop


async def test_the_deadline_shrinks_along_the_chain_and_never_grows(
    client, recorders, partner
) -> None:
    sent_at = time.monotonic()
    response = await client.get("/api/identity/customers/cus_7", headers=bearer(partner[2]))
    assert response.status_code == 200, response.text
    (middle,) = recorders["kyc_tier"].seen
    (downstream,) = recorders["audit"].seen
    # The gateway's deadline (GATEWAY_DEADLINE after the request arrived)
    # bounds the service's, which bounds the downstream call's; without
    # propagation each would see its own 10 s default.
    # A hop's deadline is its arrival plus what its caller had left when
    # sending, so it may exceed the caller's by the time in transit: bound
    # that by the span between the two hops' records (a fixed jitter margin
    # fails on a loaded machine). grpc-timeout is rounded up to 10 ms.
    rounding = 0.02
    assert middle.deadline <= middle.at + GATEWAY_DEADLINE + rounding
    in_transit_at_most = downstream.at - middle.at
    assert downstream.deadline <= middle.deadline + in_transit_at_most + rounding
    assert downstream.deadline > sent_at


async def test_a_slow_downstream_call_is_504_within_the_gateway_deadline(
    servers, recorders, partner
) -> None:
    # The downstream call is held until the gateway has answered: a 504 then
    # shows the gateway did not wait for it (a fixed delay raced the clock).
    held = recorders["audit"].hold = asyncio.Event()
    addresses = {"kyc_tier": servers["kyc_tier"].address, "audit": servers["audit"].address}
    async with gateway_client(gateway_settings(addresses, default_deadline_seconds="0.5")) as http:
        try:
            async with asyncio.timeout(60):
                response = await http.get(
                    "/api/identity/customers/cus_slow", headers=bearer(partner[2])
                )
        finally:
            held.set()
    error = assert_error(response, 504, "DEADLINE_EXCEEDED")
    assert error["status"] == "DEADLINE_EXCEEDED"


async def test_a_downstream_domain_error_travels_back_as_http_json(
    client, recorders, partner
) -> None:
    recorders["audit"].error = NotFound(
        "no customer with that id in this organisation", "CUSTOMER_NOT_FOUND"
    )
    response = await client.get(
        "/api/identity/customers/cus_gone", headers={**bearer(partner[2]), "X-Request-Id": "req-nf"}
    )
    error = assert_error(response, 404, "CUSTOMER_NOT_FOUND")
    assert error == {
        "code": 404,
        "status": "NOT_FOUND",
        "reason": "CUSTOMER_NOT_FOUND",
        "domain": "identity-platform",
        "message": "no customer with that id in this organisation",
        "metadata": {},
        "requestId": "req-nf",
    }
