"""The mesh: which services exist, where they listen by default, whom they call.

One table used by `identity up`, the gateway's routing (proto package ->
service), the chart's NetworkPolicy tests and the docs. `calls` is the
declared call graph: a service may only open channels to these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class MeshService:
    # Kubernetes-style name.
    name: str
    # Proto package segment and Python package under services/.
    package: str
    # Environment variable prefix of its settings.
    env_prefix: str
    # Port on the one-machine run (containers use 50051).
    default_port: int
    # Services it calls (by name).
    calls: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        return f"services.{self.package}"

    def address_setting(self, caller_prefix: str) -> str:
        return f"{caller_prefix}_{self.env_prefix}_ADDRESS"


CAPTURE_QUALITY = MeshService("capture-quality", "capture_quality", "CAPTURE_QUALITY", 50061)
LIVENESS = MeshService("liveness", "liveness", "LIVENESS", 50062)
EMBEDDING = MeshService("embedding", "embedding", "EMBEDDING", 50063)
MATCHING = MeshService("matching", "matching", "MATCHING", 50064)
AUDIT = MeshService("audit", "audit", "AUDIT", 50066)
KYC_TIER = MeshService(
    "kyc-tier",
    "kyc_tier",
    "KYC_TIER",
    50065,
    calls=("capture-quality", "liveness", "embedding", "matching", "audit"),
)
# Face Match (seed 002): submissions, presigned uploads, its queue and
# workers, OAuth clients. Its worker runs the shared biometric libraries
# in-process (docs/face-match.md).
FACE_MATCH = MeshService("face-match", "face_match", "FACE_MATCH", 50067, calls=("audit",))

SERVICES: tuple[MeshService, ...] = (
    CAPTURE_QUALITY,
    LIVENESS,
    EMBEDDING,
    MATCHING,
    KYC_TIER,
    AUDIT,
    FACE_MATCH,
)
GATEWAY = "gateway"
GATEWAY_DEFAULT_PORT = 8080
# The gateway routes to the services whose packages carry REST routes and
# checks every service's health.
GATEWAY_CALLS: tuple[str, ...] = tuple(s.name for s in SERVICES)

BY_NAME = {s.name: s for s in SERVICES}
BY_PACKAGE = {s.package: s for s in SERVICES}

AUDIT_APPEND = "/identity.audit.v1.AuditService/Append"
AUDIT_APPEND_BATCH = "/identity.audit.v1.AuditService/AppendBatch"

# The mesh-only RPCs (SCOPE_MESH, "/package.Service/Method") a caller may call
# as itself, by issuer; checked on every call by identity_runtime.authz
# (PERMISSION_DENIED / CALLER_NOT_ALLOWED otherwise). The default is no: an
# issuer is listed here, or is a service whose `calls` name the callee (then
# every mesh-only RPC of those services: kyc-tier, which runs the biometric
# pipeline, the outbox and the erasures).
MESH_RPCS: dict[str, frozenset[str]] = {
    # What the gateway calls as itself (gateway/app.py `_as_gateway`; a unit
    # test keeps the two equal): resolving a partner's API key, the revocation
    # epoch, a console session, an SDK session and its origin (kyc-tier); a
    # presigned upload (whether it is taken, before its body is read, then the
    # upload), an OAuth client and its revocation epoch (face-match).
    # Everything else it calls carries the partner's scopes, so its "mesh"
    # opens no audit append, no matching, no export.
    GATEWAY: frozenset(
        {
            "/identity.kyc_tier.v1.ApiKeyService/AuthenticateApiKey",
            "/identity.kyc_tier.v1.ApiKeyService/GetApiKeyRevocationEpoch",
            "/identity.kyc_tier.v1.ConsoleAuthService/AuthenticateSession",
            "/identity.kyc_tier.v1.SdkSessionService/AuthenticateSdkSession",
            "/identity.kyc_tier.v1.SdkSessionService/CheckSdkOrigin",
            "/identity.face_match.v1.SubmissionService/AuthorizeUpload",
            "/identity.face_match.v1.SubmissionService/PutObject",
            "/identity.face_match.v1.OAuthService/AuthenticateClient",
            "/identity.face_match.v1.OAuthService/GetClientRevocationEpoch",
        }
    ),
    # Face Match's audit relay appends; it reads nothing back.
    FACE_MATCH.name: frozenset({AUDIT_APPEND, AUDIT_APPEND_BATCH}),
}


def may_call_as_itself(issuer: str, rpc: str) -> bool:
    """Whether a token of `issuer` holding "mesh" counts on the mesh-only `rpc`
    (of a service the call graph lets it call: identity_runtime.authz checks both)."""
    declared = MESH_RPCS.get(issuer)
    if declared is not None:
        return rpc in declared
    service = BY_NAME.get(issuer)
    return service is not None and bool(service.calls)


def callers(name: str) -> set[str]:
    """Who calls `name` (the gateway calls every service; a name outside the
    mesh, such as a metrics scraper, is taken to depend on everything)."""
    if name == GATEWAY:
        return set()
    if name not in BY_NAME:
        return {GATEWAY, *BY_NAME}
    return {GATEWAY} | {s.name for s in SERVICES if name in s.calls}


def stop_waves(names: Sequence[str]) -> list[list[str]]:
    """`names` in the waves they stop in: a component stops once every
    component that calls it has stopped, so calls in flight finish against
    live dependencies (the gateway first, then kyc-tier and face-match, then
    the services they call)."""
    left, waves = list(names), []
    while left:
        wave = [n for n in left if not callers(n) & set(left)] or left
        waves.append(wave)
        left = [n for n in left if n not in wave]
    return waves


def default_address(service: MeshService, host: str = "127.0.0.1") -> str:
    return f"{host}:{service.default_port}"
