"""Calls between services: deadline, request id and tenant propagation;
retries only for idempotent methods; the circuit breaker.

Two real gRPC servers run on port 0 with the shared runtime, implementing
real contract services: a "front" MatchingService whose RPCs call a
downstream AuditService through the ClientFactory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from identity_platform_api.audit.v1 import audit_pb2, audit_pb2_grpc
from identity_platform_api.matching.v1 import matching_pb2, matching_pb2_grpc
from identity_runtime import clients as clients_module
from identity_runtime import context
from identity_runtime.clients import ClientFactory, ClientOptions, retry_service_config
from identity_runtime.errors import Unavailable
from identity_runtime.server import Core, ServiceSpec
from identity_runtime.settings import ServiceSettings
from identity_runtime.status import (
    error_info,
    remote_error,
    scrub_addresses,
    status_from_rpc_error,
)
from tests.support import channel, start_service
from tests.support.meshauth import caller_metadata, signer


@dataclass
class Seen:
    metadata: list[dict[str, str]] = field(default_factory=list)
    # (org, actor, scopes) the downstream service bound from the verified token.
    callers: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    remaining: list[float] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    fail_first: int = 0


class DownstreamAudit(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, seen: Seen):
        self.seen = seen

    async def QueryEntries(
        self, request: Any, ctx: grpc.aio.ServicerContext
    ) -> audit_pb2.QueryEntriesResponse:
        self.seen.metadata.append(
            {k: v for k, v in ctx.invocation_metadata() if isinstance(v, str)}
        )
        self.seen.remaining.append(ctx.time_remaining())
        bound = context.current()
        assert bound is not None
        self.seen.callers.append((bound.org_id, bound.actor, bound.scopes))
        return audit_pb2.QueryEntriesResponse()


class FlakyFront(matching_pb2_grpc.MatchingServiceServicer):
    """Verify (NO_SIDE_EFFECTS) and Enroll (no idempotency) fail with
    UNAVAILABLE for the first `fail_first` attempts of each."""

    def __init__(self, seen: Seen, clients: ClientFactory):
        self.seen = seen
        self.clients = clients

    def _attempt(self, name: str) -> None:
        self.seen.attempts[name] = self.seen.attempts.get(name, 0) + 1
        if self.seen.attempts[name] <= self.seen.fail_first:
            raise Unavailable("try again", "NOT_READY")

    async def Verify(self, request: Any, ctx: Any) -> matching_pb2.VerifyResponse:
        self._attempt("Verify")
        stub = self.clients.stub("audit", audit_pb2_grpc.AuditServiceStub)
        await stub.QueryEntries(audit_pb2.QueryEntriesRequest())
        return matching_pb2.VerifyResponse(score=1.0)

    async def Enroll(self, request: Any, ctx: Any) -> matching_pb2.EnrollResponse:
        self._attempt("Enroll")
        return matching_pb2.EnrollResponse()


def _spec(name: str, prefix: str, servicers: Any) -> ServiceSpec[ServiceSettings, Any]:
    async def build(_settings: ServiceSettings) -> Core:
        return Core()

    return ServiceSpec(
        name=name,
        settings_class=ServiceSettings,
        env_prefix=prefix,
        service_names=[],
        build=build,
        servicers=servicers,
    )


async def _front_over_audit(
    audit: audit_pb2_grpc.AuditServiceServicer, seen: Seen, env: dict[str, str] | None = None
) -> tuple[Any, ClientFactory, Any]:
    """An audit service answering with `audit`, and a front playing
    matching's part, which kyc-tier calls: its Verify calls that audit,
    signing as kyc-tier. (audit, the front's clients, the front)."""
    downstream = await start_service(
        _spec(
            "audit",
            "AUD",
            lambda core, s: [(audit_pb2_grpc.add_AuditServiceServicer_to_server, audit)],
        )
    )
    clients = ClientFactory(
        {"audit": downstream.address},
        ClientOptions(default_timeout_seconds=30),
        signer=signer("kyc-tier"),
    )
    front = await start_service(
        _spec(
            "matching",
            "FRONT",
            lambda core, s: [
                (matching_pb2_grpc.add_MatchingServiceServicer_to_server, FlakyFront(seen, clients))
            ],
        ),
        env,
    )
    return downstream, clients, front


@pytest.fixture
async def mesh_pair():
    seen = Seen()
    downstream, clients, front = await _front_over_audit(
        DownstreamAudit(seen),
        seen,
        # Deadlines of seconds, not fractions: a loaded CI machine must not run them out.
        {"FRONT_DEFAULT_DEADLINE_SECONDS": "20"},
    )
    yield seen, front, downstream
    await clients.close()
    await front.stop(0)
    await downstream.stop(0)


async def _front_call(
    front: Any, method: str, metadata: list[tuple[str, str]], deadline_seconds: float | None = None
) -> Any:
    factory = ClientFactory({"matching": front.address}, ClientOptions(default_timeout_seconds=30))
    metadata = metadata + caller_metadata("org_a", actor="api_key:key_1", scopes=("internal",))
    try:
        stub = factory.stub("matching", matching_pb2_grpc.MatchingServiceStub)
        request = (
            matching_pb2.VerifyRequest() if method == "Verify" else matching_pb2.EnrollRequest()
        )
        return await getattr(stub, method)(request, metadata=metadata, timeout=deadline_seconds)
    finally:
        await factory.close()


async def test_request_id_and_tenant_reach_the_downstream_service(mesh_pair) -> None:
    seen, front, _ = mesh_pair
    await _front_call(front, "Verify", [("x-request-id", "req-propagated-1")])
    assert seen.metadata[-1]["x-request-id"] == "req-propagated-1"
    assert "traceparent" in seen.metadata[-1]
    # The tenant travels only inside the token the front re-minted under its own key.
    assert "x-identity-org" not in seen.metadata[-1]
    assert seen.metadata[-1]["authorization"].startswith("Bearer ")
    assert seen.callers[-1] == ("org_a", "api_key:key_1", ("internal", "mesh"))


@dataclass(frozen=True)
class Sent:
    # The timeout a client interceptor put on an outgoing call (what travels
    # as grpc-timeout).
    timeout: float
    # The calling service's remaining time just before (None: no call context).
    remaining_before: float | None


@pytest.fixture
def sent_timeouts(monkeypatch: pytest.MonkeyPatch) -> list[Sent]:
    """What each outgoing call carried: the values themselves, not the time a
    server measures after gRPC has rounded them to its wire units."""
    sent: list[Sent] = []
    effective = clients_module._effective_timeout

    def recording(requested: float | None, default: float) -> float:
        bound = context.current()
        before = bound.time_remaining() if bound is not None else None
        sent.append(Sent(effective(requested, default), before))
        return sent[-1].timeout

    monkeypatch.setattr(clients_module, "_effective_timeout", recording)
    return sent


async def test_the_callers_deadline_bounds_the_downstream_call(mesh_pair, sent_timeouts) -> None:
    seen, front, _ = mesh_pair
    await _front_call(front, "Verify", [], deadline_seconds=5.0)
    # The test's own call asks for 5 s; the front (default 20 s) calls
    # downstream with what is left of its call's deadline, not with its client
    # factory's default of 30 s.
    outer, downstream = sent_timeouts
    assert outer == Sent(5.0, None)
    assert downstream.remaining_before is not None
    assert 0 < downstream.timeout <= downstream.remaining_before
    # That deadline is the caller's 5 s, not the front's own 20 s default (gRPC
    # carries it as a timeout rounded up to its wire unit, so not exactly 5 s).
    assert downstream.remaining_before < 6.0
    assert 0 < seen.remaining[-1] < 10  # the downstream ran under it, not under 30 s


async def test_without_a_deadline_the_service_default_applies_downstream(
    mesh_pair, sent_timeouts
) -> None:
    seen, front, _ = mesh_pair
    async with channel(front) as raw:  # no client-side timeout at all
        await matching_pb2_grpc.MatchingServiceStub(raw).Verify(matching_pb2.VerifyRequest())
    # The front's default deadline is 20 s, set on its own clock when the call
    # arrived; the client factory's own default is 30 s: the downstream call
    # carries what is left of the 20 s.
    (downstream,) = sent_timeouts
    assert downstream.remaining_before is not None
    assert 0 < downstream.timeout <= downstream.remaining_before < 20.0
    assert 0 < seen.remaining[-1] < 25  # the downstream ran under it, not under 30 s


async def test_idempotent_methods_are_retried_others_are_not(mesh_pair) -> None:
    seen, front, _ = mesh_pair
    seen.fail_first = 1
    reply = await _front_call(front, "Verify", [])
    assert reply.score == 1.0
    assert seen.attempts["Verify"] == 2
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _front_call(front, "Enroll", [])
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert seen.attempts["Enroll"] == 1
    assert error_info(status_from_rpc_error(caught.value)).reason == "NOT_READY"


def test_retry_policy_lists_only_idempotent_methods() -> None:
    import json

    config = json.loads(retry_service_config("matching"))
    names = {n["method"] for n in config["methodConfig"][0]["name"]}
    assert "Verify" in names and "Search" in names
    assert "Enroll" not in names


async def test_circuit_breaker_fails_fast_after_repeated_transport_failures() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    # Refused at once: a long deadline only keeps a loaded machine from turning it into a timeout.
    factory = ClientFactory(
        {"audit": f"127.0.0.1:{dead_port}"},
        ClientOptions(
            breaker_failure_threshold=3, breaker_reset_seconds=60, default_timeout_seconds=30
        ),
    )
    stub = factory.stub("audit", audit_pb2_grpc.AuditServiceStub)
    try:
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Append(audit_pb2.AppendRequest())
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError) as opened:
            await stub.Append(audit_pb2.AppendRequest())
        assert opened.value.code() == grpc.StatusCode.UNAVAILABLE
        # Refused by the breaker before any connection attempt (no timing
        # assertion: CIRCUIT_OPEN is only ever decided on the client side).
        assert remote_error(opened.value).reason == "CIRCUIT_OPEN"
        assert factory.breakers["audit"].state == "open"
    finally:
        await factory.close()


async def test_downstream_errors_keep_their_code_and_reason(mesh_pair) -> None:
    seen, front, _ = mesh_pair
    seen.fail_first = 5
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _front_call(front, "Enroll", [])
    converted = remote_error(caught.value, "matching")
    assert (converted.code, converted.reason) == ("UNAVAILABLE", "NOT_READY")
    assert converted.metadata["service"] == "matching"


def test_context_without_org_is_refused() -> None:
    from identity_runtime.errors import Unauthenticated

    token = context.bind(context.CallContext(request_id="r"))
    try:
        with pytest.raises(Unauthenticated):
            context.require_org()
    finally:
        context.reset(token)


# --- narrow failure: breakers count only the callee's own failures ------------------------------


def _dead_address() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def _caller() -> list[tuple[str, str]]:
    return caller_metadata("org_a", actor="api_key:key_1", scopes=("internal",))


@pytest.fixture
async def front_with_dead_audit():
    """A "matching" front whose Verify calls an audit service that is down;
    its Enroll fails on its own (NOT_READY) when `fail_first` says so."""
    seen = Seen()
    clients = ClientFactory(
        {"audit": _dead_address()},
        ClientOptions(breaker_failure_threshold=2, breaker_reset_seconds=60),
        signer=signer("kyc-tier"),
    )
    front = await start_service(
        _spec(
            "matching",
            "FRONT",
            lambda core, s: [
                (matching_pb2_grpc.add_MatchingServiceServicer_to_server, FlakyFront(seen, clients))
            ],
        )
    )
    callers = ClientFactory(
        {"matching": front.address},
        ClientOptions(breaker_failure_threshold=2, breaker_reset_seconds=60),
    )
    yield seen, callers, clients
    await callers.close()
    await clients.close()
    await front.stop(0)


async def test_a_failure_the_callee_only_passes_on_leaves_its_breaker_closed(
    front_with_dead_audit,
) -> None:
    _, callers, front_clients = front_with_dead_audit
    stub = callers.stub("matching", matching_pb2_grpc.MatchingServiceStub)
    reasons = []
    for _ in range(6):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Verify(matching_pb2.VerifyRequest(), metadata=_caller())
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        info = error_info(status_from_rpc_error(caught.value))
        assert info is not None and info.metadata["origin"] == "audit"
        assert info.metadata["service"] == "audit"
        reasons.append(info.reason)
        # No internal address in what the caller is told.
        assert "127.0.0.1" not in caught.value.details()
        assert "ipv4" not in caught.value.details()
    # The front's breaker for audit opened after two transport failures (gRPC
    # retries Verify, which has no side effects, so the first call already
    # reaches it)...
    assert set(reasons) == {"CIRCUIT_OPEN"}
    assert front_clients.breakers["audit"].state == "open"
    # ...while the caller's breaker for the front, which answered every time, stays closed.
    assert callers.breakers["matching"].state == "closed"
    assert callers.breakers["matching"].failures == 0


async def test_the_callees_own_unavailability_opens_its_breaker(front_with_dead_audit) -> None:
    seen, callers, _ = front_with_dead_audit
    seen.fail_first = 100
    stub = callers.stub("matching", matching_pb2_grpc.MatchingServiceStub)
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Enroll(matching_pb2.EnrollRequest(), metadata=_caller())
        info = error_info(status_from_rpc_error(caught.value))
        assert info is not None and (info.reason, info.metadata["origin"]) == (
            "NOT_READY",
            "matching",
        )
    assert callers.breakers["matching"].state == "open"
    with pytest.raises(grpc.aio.AioRpcError) as short_circuited:
        await stub.Enroll(matching_pb2.EnrollRequest(), metadata=_caller())
    info = error_info(status_from_rpc_error(short_circuited.value))
    assert info is not None and info.reason == "CIRCUIT_OPEN"
    assert int(info.metadata["retry_after_seconds"]) >= 1
    assert seen.attempts["Enroll"] == 2  # the third call never left the caller


async def test_a_transport_failure_is_attributed_to_the_service_called() -> None:
    # A refused connection fails at once; the deadline only has to outlast a loaded machine.
    factory = ClientFactory({"audit": _dead_address()}, ClientOptions(default_timeout_seconds=30))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await factory.stub("audit", audit_pb2_grpc.AuditServiceStub).Append(
                audit_pb2.AppendRequest()
            )
    finally:
        await factory.close()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details() == "the audit service is unavailable"
    info = error_info(status_from_rpc_error(caught.value))
    assert info is not None
    assert (info.reason, dict(info.metadata)) == (
        "DEPENDENCY_UNAVAILABLE",
        {"service": "audit", "origin": "audit"},
    )


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        (
            "failed to connect to all addresses; last error: UNKNOWN: "
            "ipv4:127.0.0.1:50064: Failed to connect to remote host: Connection refused",
            "failed to connect to all addresses; last error: UNKNOWN: "
            "<address> Failed to connect to remote host: Connection refused",
        ),
        ("ipv6:[::1]:50064: refused", "<address> refused"),
        ("peer [fd00::7]:50051 went away", "peer <address> went away"),
        ("10.0.0.7:50051 is down", "<address> is down"),
        ("unix:/run/identity/matching.sock: gone", "<address> gone"),
        ("score must be in [0.0, 1.0]", "score must be in [0.0, 1.0]"),
        ("version 1.2.3 of sface-2021dec", "version 1.2.3 of sface-2021dec"),
    ],
)
def test_addresses_are_scrubbed_from_messages(text: str, scrubbed: str) -> None:
    assert scrub_addresses(text) == scrubbed


class HangingAudit(audit_pb2_grpc.AuditServiceServicer):
    """An audit service that takes every call and never answers (a hung
    process: SIGSTOP, a deadlock), until the test releases it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def QueryEntries(self, request: Any, ctx: Any) -> audit_pb2.QueryEntriesResponse:
        await self.release.wait()
        return audit_pb2.QueryEntriesResponse()


async def test_a_hung_dependency_is_named_and_its_caller_is_not_blamed() -> None:
    """The front's call to a hung audit runs out before the caller's own
    deadline (each hop keeps a margin of it), so the front answers
    DEADLINE_EXCEEDED naming audit, and the caller's breaker for the front,
    which answered, stays closed (black-box probe 7, D13: a hung matching was
    reported as kyc-tier's timeout and opened the gateway's kyc-tier breaker,
    short-circuiting every kyc-tier route)."""
    hanging = HangingAudit()
    audit, front_clients, front = await _front_over_audit(hanging, Seen())
    callers = ClientFactory(
        {"matching": front.address},
        ClientOptions(breaker_failure_threshold=1, breaker_reset_seconds=60),
    )
    try:
        stub = callers.stub("matching", matching_pb2_grpc.MatchingServiceStub)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Verify(matching_pb2.VerifyRequest(), metadata=_caller(), timeout=4.0)
    finally:
        hanging.release.set()
        await callers.close()
        await front_clients.close()
        await front.stop(0)
        await audit.stop(0)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    info = error_info(status_from_rpc_error(caught.value))
    assert info is not None, caught.value.details()
    assert (info.reason, info.metadata["origin"]) == ("DEADLINE_EXCEEDED", "audit")
    assert callers.breakers["matching"].state == "closed"
    assert callers.breakers["matching"].failures == 0
    assert front_clients.breakers["audit"].failures == 1
