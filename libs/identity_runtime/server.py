"""The one way every service runs: `serve(spec)`.

A service describes itself with a `ServiceSpec`: its name, how to build its
core from settings (`build`), and which servicers to register. `start()`
wires the asyncio gRPC server with the shared interceptors, message-size
limits, the standard health service (NOT_SERVING until `build` finished and
the core says it is ready, SERVING after), reflection, and returns a
`RunningServer`. `serve()` runs it until SIGTERM/SIGINT, then reports
NOT_SERVING, lets in-flight calls finish within the grace period and closes
the core.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from identity_runtime import descriptors, logs, meshauth, meshtls, metrics, tracing
from identity_runtime.authz import CallerAuthInterceptor
from identity_runtime.interceptors import ChainInterceptor, Stage, server_stages
from identity_runtime.mesh import MeshService
from identity_runtime.meshauth import Caller
from identity_runtime.ratelimit import RateLimits
from identity_runtime.settings import ServiceSettings, SettingsError

log = logs.get_logger("identity.server")

S = TypeVar("S", bound=ServiceSettings)


class Core:
    """What `build` returns: the service's domain objects and their lifecycle."""

    async def ready(self) -> tuple[bool, str]:
        """Whether the service can answer; the text goes to the health detail log."""
        return True, "ready"

    async def close(self) -> None:
        return None


C = TypeVar("C", bound=Core)


class CoreServicer(Generic[C]):
    """Base of a service's servicers: each RPC reaches the core as `self.core`."""

    def __init__(self, core: C) -> None:
        self.core = core


# (add_XServicer_to_server, servicer instance)
Registration = tuple[Callable[[Any, grpc.aio.Server], None], Any]


@dataclass
class ServiceSpec(Generic[S, C]):
    # Kubernetes-style name: "capture-quality".
    name: str
    settings_class: type[S]
    # Environment prefix: "CAPTURE_QUALITY".
    env_prefix: str
    # Full names of the gRPC services registered (for health and reflection).
    service_names: Sequence[str]
    # Builds the core from settings (loads models, opens the database).
    build: Callable[[S], Awaitable[C]]
    # Servicers for a built core.
    servicers: Callable[[C, S], Sequence[Registration]]
    # Partner API keys accepted in metadata on routed RPCs: (core, secret) ->
    # the key's caller (identity_runtime.authz). None: mesh tokens only.
    api_keys: Callable[[C, str], Awaitable[Caller]] | None = None
    # RPCs ("pkg.Service/Method") whose declared rate limit the service counts
    # itself (e.g. in its database); the others are counted by the server.
    own_rate_limits: frozenset[str] = frozenset()
    # The service's own stages, innermost of the chain (after the shared
    # ones: the call context is bound and their errors become statuses),
    # built with the core (e.g. kyc-tier's console roles).
    stages: Callable[[C], Sequence[Stage]] | None = None

    @classmethod
    def from_mesh(
        cls,
        service: MeshService,
        *,
        settings_class: type[S],
        build: Callable[[S], Awaitable[C]],
        servicers: Sequence[type[CoreServicer[C]]],
        api_keys: Callable[[C, str], Awaitable[Caller]] | None = None,
        own_rate_limits: frozenset[str] = frozenset(),
        stages: Callable[[C], Sequence[Stage]] | None = None,
    ) -> ServiceSpec[S, C]:
        """The spec of a service the mesh declares: its name and environment prefix
        come from mesh.py, its gRPC services from the contracts (every service of
        the proto package identity.<package>.v1). Each of `servicers` is built with
        the core and registered for the contract service its generated base
        declares; a service without one answers UNIMPLEMENTED (its generated base)."""
        declared = [
            s
            for s in descriptors.services()
            if descriptors.service_package(s.full_name) == service.package
        ]
        contract = [descriptors.generated_servicer(s) for s in declared]
        if not contract:
            raise ValueError(f"no gRPC service in the contracts of package {service.package!r}")
        for servicer in servicers:
            if not any(issubclass(servicer, base) for base, _ in contract):
                raise ValueError(
                    f"{servicer.__name__} implements no gRPC service of package {service.package!r}"
                )

        def registrations(core: C, settings: S) -> list[Registration]:
            built = [servicer(core) for servicer in servicers]
            return [
                (add, next((s for s in built if isinstance(s, base)), None) or base())
                for base, add in contract
            ]

        return cls(
            name=service.name,
            settings_class=settings_class,
            env_prefix=service.env_prefix,
            service_names=[s.full_name for s in declared],
            build=build,
            servicers=registrations,
            api_keys=api_keys,
            own_rate_limits=own_rate_limits,
            stages=stages,
        )


@dataclass
class RunningServer:
    name: str
    server: grpc.aio.Server
    port: int
    address: str
    core: Core | None
    health: health.aio.HealthServicer
    settings: ServiceSettings
    service_names: Sequence[str] = field(default_factory=tuple)
    # The plaintext health-only server (settings.health_port), if any.
    health_server: grpc.aio.Server | None = None
    # The Prometheus exposition (settings.metrics_port), if any.
    metrics_server: metrics.MetricsServer | None = None
    # The counters of the RPCs' declared rate limits.
    rate_limits: RateLimits | None = None

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self.health.set("", status)
        for name in self.service_names:
            await self.health.set(name, status)

    async def stop(self, grace: float | None = None) -> None:
        await self.set_serving(False)
        await self.server.stop(self.settings.shutdown_grace_seconds if grace is None else grace)
        if self.health_server is not None:
            await self.health_server.stop(0)
        if self.metrics_server is not None:
            self.metrics_server.stop()
            self.metrics_server = None
        if self.core is not None:
            await self.core.close()
        if self.rate_limits is not None:
            await self.rate_limits.close()


async def start(spec: ServiceSpec[S, C], settings: S) -> RunningServer:
    """Start the server, bind, then build the core and report SERVING."""
    tracing.configure(spec.name, settings.otlp_endpoint)
    tls = meshtls.mesh_tls_from(settings, spec.env_prefix)
    trusted = meshauth.trusted_keys_from(
        settings.mesh_trusted_keys_file,
        settings.mesh_trusted_keys,
        f"{spec.env_prefix}_MESH_TRUSTED_KEYS",
    )
    # Health answers (NOT_SERVING) while the core builds; the service RPCs are
    # registered before start because gRPC cannot add them later, and refuse
    # with UNAVAILABLE/NOT_READY until the core is in place.
    holder = _CoreHolder(spec.name)
    api_keys = spec.api_keys
    auth = CallerAuthInterceptor(
        spec.name,
        meshauth.TokenVerifier(trusted),
        api_keys=(lambda secret: api_keys(cast(C, holder), secret)) if api_keys else None,
    )
    # The declared rate limits hold for every caller of this service.
    rate_limits = RateLimits(settings.rate_limit_storage, f"identity-{spec.name}")
    own_stages = list(spec.stages(cast(C, holder))) if spec.stages is not None else []
    server = grpc.aio.server(
        interceptors=[
            ChainInterceptor(
                [
                    *server_stages(
                        settings.default_deadline_seconds,
                        auth,
                        service=spec.name,
                        rate_limits=rate_limits,
                        own_rate_limits=spec.own_rate_limits,
                    ),
                    *own_stages,
                ]
            )
        ],
        options=[
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.so_reuseport", 0),
            # Callers reconnect (and re-resolve a headless Service) every few
            # minutes, so new replicas receive traffic; in-flight calls finish.
            ("grpc.max_connection_age_ms", 5 * 60 * 1000),
            ("grpc.max_connection_age_grace_ms", 30 * 1000),
        ],
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            *spec.service_names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    address = f"{settings.host}:{settings.port}"
    port = _listen(spec.name, server, address, tls.server_credentials() if tls else None)
    health_server = None
    if settings.health_port is not None:
        # Probes (kubelet) cannot present a mesh certificate: a plaintext port
        # that serves nothing but the health service.
        health_server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, health_server)
        _listen(spec.name, health_server, f"{settings.host}:{settings.health_port}", None)
    running = RunningServer(
        name=spec.name,
        server=server,
        port=port,
        address=f"{settings.host}:{port}",
        core=None,
        health=health_servicer,
        settings=settings,
        service_names=tuple(spec.service_names),
        health_server=health_server,
        rate_limits=rate_limits,
    )
    await running.set_serving(False)
    try:
        running.metrics_server = metrics.serve(settings.host, settings.metrics_port)
    except OSError as exc:
        await running.stop(0)
        raise OSError(f"{spec.name}: {exc}") from None
    # The holder is the core to the servicers: it forwards every attribute to it.
    for add, servicer in spec.servicers(cast(C, holder), settings):
        add(servicer, server)
    await server.start()
    if health_server is not None:
        await health_server.start()
    try:
        core = await spec.build(settings)
    except BaseException:
        await running.stop(0)
        raise
    holder.core = core
    running.core = core
    ready, detail = await core.ready()
    await running.set_serving(ready)
    log.info("listening", service=spec.name, endpoint=running.address, serving=ready, detail=detail)
    return running


def _listen(
    name: str, server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None
) -> int:
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        raise OSError(f"{name}: cannot listen on {address} (is the port taken?)") from exc
    if port == 0:
        raise OSError(f"{name}: cannot listen on {address} (is the port taken?)")
    return port


class _CoreHolder(Core):
    """Stands in for the core until it is built; servicers reach it through
    `holder.core` so that RPCs arriving early get NOT_READY, not a crash."""

    def __init__(self, name: str):
        self.name = name
        self.core: Core | None = None

    def __getattr__(self, item: str) -> Any:
        core = self.__dict__.get("core")
        if core is None:
            from identity_runtime.errors import Unavailable

            raise Unavailable(f"{self.name} is starting", "NOT_READY")
        return getattr(core, item)


async def _run_until_signalled(spec: ServiceSpec[S, C], settings: S) -> None:
    loop = asyncio.get_running_loop()
    if settings.worker_threads > 0:
        # The process's own loop only (tests run several services on one loop).
        loop.set_default_executor(
            ThreadPoolExecutor(
                max_workers=settings.worker_threads, thread_name_prefix=f"{spec.name}-worker"
            )
        )
    running = await start(spec, settings)
    stop_event = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_event.set)
    print(f"{spec.name} listening on {running.address}", flush=True)
    await stop_event.wait()
    log.info("stopping", service=spec.name, grace_seconds=settings.shutdown_grace_seconds)
    await running.stop()
    log.info("stopped", service=spec.name)


def serve(spec: ServiceSpec[S, C], environ: dict[str, str] | None = None) -> None:
    """Entry point of every service's `__main__`: settings, logs, run."""
    from identity_runtime.settings import load_settings

    try:
        settings = load_settings(spec.settings_class, spec.env_prefix, environ)
    except SettingsError as exc:
        print(f"{spec.name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.configure(spec.name, settings.log_level, settings.log_format)
    try:
        asyncio.run(_run_until_signalled(spec, settings))
    except SettingsError as exc:
        # Raised by `build` too (e.g. a model file missing or altered).
        print(f"{spec.name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:
        print(f"{spec.name}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        pass
