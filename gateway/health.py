"""`GET /api/healthz`: every mesh service's standard gRPC health, at once.

Each service is asked `grpc.health.v1.Health/Check` for the whole server
(service "") concurrently, with a short timeout, over a plain channel of its
own: the routing channels' circuit breakers must not hide a service that has
come back. 200 when every service is SERVING, 503 otherwise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from identity_platform_api.gateway.v1 import gateway_pb2
from identity_runtime import mesh
from identity_runtime.clients import open_channel
from identity_runtime.meshtls import MeshTls

_CHANNEL_OPTIONS = [
    # Reconnect quickly after a restart instead of backing off for minutes.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.min_reconnect_backoff_ms", 200),
]


class HealthChecker:
    def __init__(
        self, addresses: Mapping[str, str], timeout_seconds: float, tls: MeshTls | None = None
    ):
        # proto package -> address, in the mesh's order.
        self.addresses = dict(addresses)
        self.timeout_seconds = timeout_seconds
        # Health is checked over the same mutual TLS as every call (None: plaintext).
        self.tls = tls
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _stub(self, package: str) -> health_pb2_grpc.HealthStub:
        if package not in self._channels:
            self._channels[package] = open_channel(
                self.addresses[package], self.tls, options=_CHANNEL_OPTIONS
            )
        return health_pb2_grpc.HealthStub(self._channels[package])

    async def _check_one(self, service: mesh.MeshService) -> gateway_pb2.ServiceHealth:
        address = self.addresses[service.package]
        started = time.perf_counter()
        result = gateway_pb2.ServiceHealth(name=service.name, address=address)
        try:
            # typeshed's HealthStub declares no methods; grpc's generated one has Check.
            reply = await self._stub(service.package).Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(service=""), timeout=self.timeout_seconds
            )
        except grpc.aio.AioRpcError as exc:
            result.status = "UNREACHABLE"
            detail = (exc.details() or "").splitlines()[0][:200] if exc.details() else ""
            result.detail = f"{exc.code().name}: {detail}" if detail else exc.code().name
        else:
            result.status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                result.detail = (
                    "the service reports it cannot answer yet "
                    "(starting, or its models or database are not ready)"
                )
        result.latency_ms = round((time.perf_counter() - started) * 1000)
        return result

    async def check(self) -> tuple[gateway_pb2.GetHealthResponse, int]:
        """The aggregated health and its HTTP status (200 or 503)."""
        services = [s for s in mesh.SERVICES if s.package in self.addresses]
        results = await asyncio.gather(*(self._check_one(s) for s in services))
        healthy = all(r.status == "SERVING" for r in results)
        response = gateway_pb2.GetHealthResponse(
            status="SERVING" if healthy else "NOT_SERVING", services=results
        )
        return response, 200 if healthy else 503

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
