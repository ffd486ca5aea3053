"""gRPC clients for calls between services.

`ClientFactory.channel(service)` returns a cached `grpc.aio.Channel` with:
- deliberate message-size limits (the same as the servers');
- retries through gRPC's own retry policy, configured only for methods the
  contract marks `NO_SIDE_EFFECTS` or `IDEMPOTENT`, on UNAVAILABLE;
- an interceptor that sends the caller's request id and trace context, a
  caller token this process signs (`identity_runtime.meshauth`) carrying the
  current call's organisation, actor and scopes, and a timeout that ends a
  margin before the caller's own deadline (so a hung service deep in the
  chain is named by the service that called it, not blamed on the first);
- a circuit breaker per downstream service that fails fast with
  UNAVAILABLE / CIRCUIT_OPEN after repeated failures of that service itself:
  an UNAVAILABLE it only passes on from one of its own dependencies (its
  ErrorInfo names another `origin`) shows the service answering, and does
  not count against it.

Errors from downstream calls arrive as `grpc.aio.AioRpcError`; adapters turn
them into domain errors with `identity_runtime.status.remote_error`, which
keeps the downstream code and reason.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from identity_runtime import context as call_context
from identity_runtime import descriptors, mesh, metrics, tracing
from identity_runtime.errors import DeadlineExceeded, DomainError, Unavailable
from identity_runtime.meshauth import TokenSigner
from identity_runtime.meshtls import MeshTls
from identity_runtime.status import error_origin, remote_error

AUTHORIZATION_KEY = "authorization"

# A generated stub class on a channel.
T = TypeVar("T")
# Any call's request and response messages.
Req = TypeVar("Req")
Resp = TypeVar("Resp")

# Codes that say "the service or the network failed", not "your request is bad".
_TRANSPORT_FAILURES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def retry_service_config(
    package: str, max_attempts: int = 3, initial_backoff: float = 0.05, max_backoff: float = 0.5
) -> str:
    """Service config JSON with a retry policy for the package's safe methods only."""
    names = []
    for service in descriptors.services():
        if descriptors.service_package(service.full_name) != package:
            continue
        for method in service.methods:
            if descriptors.is_retry_safe(method):
                names.append({"service": service.full_name, "method": method.name})
    # round_robin over every address the name resolves to: with a headless
    # Kubernetes Service each replica is an address, so pods an autoscaler
    # adds get traffic without reconnecting (pick_first would pin one pod).
    config: dict[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}], "methodConfig": []}
    if names:
        config["methodConfig"].append(
            {
                "name": names,
                "retryPolicy": {
                    "maxAttempts": max_attempts,
                    "initialBackoff": f"{initial_backoff}s",
                    "maxBackoff": f"{max_backoff}s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        )
    return json.dumps(config)


class CircuitBreaker:
    """Opens after `failure_threshold` consecutive failures of the service
    itself; after `reset_seconds` lets one trial call through (half-open).

    `origin` is the service's mesh name, as its errors carry it: a failure
    that names another origin was passed on by a service that answered."""

    def __init__(
        self, name: str, failure_threshold: int = 5, reset_seconds: float = 5.0, origin: str = ""
    ):
        self.name = name
        self.origin = origin or name
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self.failures = 0
        self.opened_at: float | None = None
        self.trial_in_flight = False
        # Times it went open from closed or half-open (a failed trial):
        # identity_circuit_breaker_opens_total, which no scrape can miss.
        self.opens = 0
        metrics.watch_breaker(self)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if time.monotonic() - self.opened_at >= self.reset_seconds:
            return "half-open"
        return "open"

    def before_call(self) -> None:
        state = self.state
        if state == "open" or (state == "half-open" and self.trial_in_flight):
            raise Unavailable(
                f"{self.origin} is failing; calls are short-circuited "
                f"for up to {self.reset_seconds:.0f}s",
                "CIRCUIT_OPEN",
                {
                    "service": self.origin,
                    "retry_after_seconds": self.retry_after_seconds(),
                },
            )
        if state == "half-open":
            self.trial_in_flight = True

    def retry_after_seconds(self) -> int:
        """Whole seconds until the next trial call (at least 1)."""
        if self.opened_at is None:
            return 1
        left = self.reset_seconds - (time.monotonic() - self.opened_at)
        return max(1, math.ceil(left))

    def record(self, code: grpc.StatusCode | None, origin: str = "") -> None:
        """One call's outcome; `origin` is where its error arose ("" = the
        transport or the service itself)."""
        self.trial_in_flight = False
        if code in _TRANSPORT_FAILURES and origin in ("", self.origin):
            self.failures += 1
            if self.failures >= self.failure_threshold or self.opened_at is not None:
                if self.state != "open":
                    self.opens += 1
                self.opened_at = time.monotonic()
        else:
            self.failures = 0
            self.opened_at = None


def local_rpc_error(error: DomainError, origin: str = "") -> grpc.aio.AioRpcError:
    """A failure decided on the client side (open breaker, no time left), shaped
    like any other failed call: grpc's interceptor machinery only handles
    AioRpcError, and callers then treat every downstream failure alike.
    `origin`: the service the failure is about (not the caller's own)."""
    from identity_runtime.status import to_status

    status = to_status(error, origin=origin)
    trailing = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
    return grpc.aio.AioRpcError(
        code=grpc.StatusCode[error.code],
        initial_metadata=grpc.aio.Metadata(),
        trailing_metadata=trailing,
        details=error.message,
    )


def outgoing_metadata(
    extra: Mapping[str, str] | None = None, signer: TokenSigner | None = None
) -> list[tuple[str, str]]:
    """Metadata that carries the current call's context downstream: the request
    id, the trace context and, with a `signer`, a caller token re-minted for
    the current organisation, actor and scopes."""
    ctx = call_context.current()
    metadata: dict[str, str] = {}
    if ctx is not None:
        metadata[call_context.REQUEST_ID_KEY] = ctx.request_id
    if signer is not None:
        token = signer.mint(
            ctx.org_id if ctx else "", ctx.actor if ctx else "", ctx.scopes if ctx else ()
        )
        metadata[AUTHORIZATION_KEY] = f"Bearer {token}"
    tracing.inject(metadata)
    if extra:
        metadata.update(extra)
    return list(metadata.items())


# What a service keeps of its own deadline when it calls downstream (at most
# a quarter of what is left): time to answer its caller with the callee's
# DEADLINE_EXCEEDED, naming the callee, before the caller's own deadline runs
# out and blames this service instead (its breaker would count it).
DEADLINE_MARGIN_SECONDS = 0.5


def _effective_timeout(requested: float | None, default: float) -> float:
    """The call's timeout: ending a margin before the current call's own deadline."""
    timeout = requested if requested is not None else default
    ctx = call_context.current()
    remaining = ctx.time_remaining() if ctx else None
    if remaining is not None:
        if remaining <= 0:
            raise DeadlineExceeded("no time left for a downstream call")
        timeout = min(timeout, remaining - min(DEADLINE_MARGIN_SECONDS, remaining / 4))
    return timeout


class _Propagation:
    """Caller token, request id, trace context and deadline on every call."""

    def __init__(self, breaker: CircuitBreaker, default_timeout: float, signer: TokenSigner | None):
        self.breaker = breaker
        self.default_timeout = default_timeout
        self.signer = signer

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*outgoing_metadata(signer=self.signer))
        for key, value in details.metadata or ():
            metadata[key] = value
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=_effective_timeout(details.timeout, self.default_timeout),
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )

    def _admit(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        try:
            self.breaker.before_call()
            return self._details(details)
        except DomainError as exc:
            raise local_rpc_error(exc, self.breaker.origin) from None


class _PropagatingInterceptor(_Propagation, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self,
        continuation: Callable[
            [grpc.aio.ClientCallDetails, Req], Awaitable[grpc.aio.UnaryUnaryCall[Req, Resp]]
        ],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Req,
    ) -> grpc.aio.UnaryUnaryCall[Req, Resp]:
        calls = metrics.CLIENT_REQUESTS
        try:
            details = self._admit(client_call_details)
        except grpc.aio.AioRpcError as exc:
            calls.labels(self.breaker.name, exc.code().name).inc()
            raise
        call = await continuation(details, request)
        try:
            await call
        except grpc.aio.AioRpcError as exc:
            origin = error_origin(exc)
            self.breaker.record(exc.code(), origin)
            calls.labels(self.breaker.name, exc.code().name).inc()
            if origin:
                raise
            # gRPC's own failure (no connection, no time left) or an error that
            # names no origin: attribute it to the service called, in words
            # that name no address, so every caller above sees where it arose.
            raise local_rpc_error(remote_error(exc, self.breaker.origin)) from None
        except BaseException:
            self.breaker.record(None)
            raise
        self.breaker.record(grpc.StatusCode.OK)
        calls.labels(self.breaker.name, "OK").inc()
        return call


# grpc.aio files an interceptor under the first call kind it implements only,
# so the server-streaming side is its own class (the CSV exports).
class _PropagatingStreamInterceptor(_Propagation, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self,
        continuation: Callable[
            [grpc.aio.ClientCallDetails, Req], Awaitable[grpc.aio.UnaryStreamCall[Req, Resp]]
        ],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Req,
    ) -> grpc.aio.UnaryStreamCall[Req, Resp]:
        details = self._admit(client_call_details)
        self.breaker.record(None)
        return await continuation(details, request)


@dataclass(frozen=True)
class ClientOptions:
    max_message_bytes: int = 24 * 1024 * 1024
    default_timeout_seconds: float = 10.0
    breaker_failure_threshold: int = 5
    breaker_reset_seconds: float = 5.0
    max_attempts: int = 3
    # Mutual TLS to every service (identity_runtime.meshtls); None = plaintext.
    tls: MeshTls | None = None


def open_channel(address: str, tls: MeshTls | None, **kwargs: Any) -> grpc.aio.Channel:
    """A channel to a mesh component: mutual TLS with `tls`, else plaintext."""
    if tls is None:
        return grpc.aio.insecure_channel(address, **kwargs)
    return grpc.aio.secure_channel(address, tls.channel_credentials(), **kwargs)


class ClientFactory:
    """One channel per downstream service, created lazily, closed together."""

    def __init__(
        self,
        addresses: Mapping[str, str],
        options: ClientOptions | None = None,
        signer: TokenSigner | None = None,
    ):
        """`signer` mints the caller token of every call (without one, services
        refuse the calls: only tests of the client machinery go without)."""
        self.addresses = dict(addresses)
        self.options = options or ClientOptions()
        self.signer = signer
        self._channels: dict[str, grpc.aio.Channel] = {}
        self.breakers: dict[str, CircuitBreaker] = {}

    def channel(self, service: str) -> grpc.aio.Channel:
        """`service` is the proto package name: "matching", "audit", ..."""
        if service not in self._channels:
            address = self.addresses.get(service)
            if not address:
                raise Unavailable(
                    f"no address configured for the {service} service",
                    "DEPENDENCY_UNAVAILABLE",
                    {"service": service},
                )
            known = mesh.BY_PACKAGE.get(service)
            breaker = CircuitBreaker(
                service,
                self.options.breaker_failure_threshold,
                self.options.breaker_reset_seconds,
                origin=known.name if known else service,
            )
            self.breakers[service] = breaker
            self._channels[service] = open_channel(
                address,
                self.options.tls,
                options=[
                    ("grpc.max_send_message_length", self.options.max_message_bytes),
                    ("grpc.max_receive_message_length", self.options.max_message_bytes),
                    ("grpc.enable_retries", 1),
                    (
                        "grpc.service_config",
                        retry_service_config(service, self.options.max_attempts),
                    ),
                    ("grpc.keepalive_time_ms", 30_000),
                ],
                interceptors=[
                    _PropagatingInterceptor(
                        breaker, self.options.default_timeout_seconds, self.signer
                    ),
                    _PropagatingStreamInterceptor(
                        breaker, self.options.default_timeout_seconds, self.signer
                    ),
                ],
            )
        return self._channels[service]

    def stub(self, service: str, stub_class: Callable[[grpc.aio.Channel], T]) -> T:
        """`stub_class` on the service's channel: a generated `XServiceStub`
        (typed as its `XServiceAsyncStub`)."""
        return stub_class(self.channel(service))

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
