"""Who may call what: every service authenticates and authorises each call.

`CallerAuthInterceptor` is the first server interceptor of every service.
For each contract RPC (health and reflection stay open) it

1. authenticates the caller: `authorization: Bearer <mesh token>` verified
   against the mesh's trusted keys (`identity_runtime.meshauth`), or, on a
   service that accepts them (kyc-tier), a partner API key
   (`x-api-key: idk_...`, `authorization: ApiKey idk_...` or
   `authorization: Bearer idk_...`) on an RPC that has an HTTP route.
   Nothing else is trusted: bare `x-identity-org` / `-actor` / `-scopes`
   metadata is ignored. Failure: UNAUTHENTICATED / CALLER_UNAUTHENTICATED.
2. checks the mesh's call graph (`identity_runtime.mesh`): a token's issuer
   must be the gateway or a service that declares it calls this one, and on
   a mesh-only RPC it must be declared to call that RPC as itself
   (`mesh.may_call_as_itself`: the gateway only its credential checks).
   Failure: PERMISSION_DENIED / CALLER_NOT_ALLOWED.
   Over mutual TLS the token's issuer must also be the workload named by
   the client certificate (`spiffe://identity.local/<issuer>`; a certificate
   without a SPIFFE name matches no issuer): a token lifted from one
   workload cannot be replayed from another.
3. checks the RPC's scope from the contract (`(identity.common.v1.access)`):
   `mesh` needs a mesh service acting as itself, `internal` the internal
   scope, `public` public or internal, `anonymous` only an authenticated
   mesh caller. Failure: PERMISSION_DENIED / SCOPE_INSUFFICIENT.
4. binds the verified caller, which `CallContextInterceptor` turns into the
   call's organisation, actor and scopes.

It sits outside the error interceptor, so it aborts with the
`google.rpc.Status` itself, and logs each refusal (never the credential).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

import grpc
from google.api import annotations_pb2
from google.protobuf.descriptor import MethodDescriptor

from identity_platform_api.common.v1 import options_pb2
from identity_runtime import context as call_context
from identity_runtime import descriptors, mesh, meshtls
from identity_runtime.errors import DomainError, PermissionDenied, Unauthenticated
from identity_runtime.interceptors import ScopedInterceptor
from identity_runtime.logs import get_logger
from identity_runtime.meshauth import (
    API_KEY_ISSUER,
    MESH_SCOPE,
    UNAUTHENTICATED_REASON,
    Caller,
    TokenVerifier,
)
from identity_runtime.request_ids import client_request_id
from identity_runtime.status import to_grpc_status

log = get_logger("identity.auth")

AUTHORIZATION_KEY = "authorization"
API_KEY_KEY = "x-api-key"
API_KEY_PREFIX = "idk_"
GATEWAY_ISSUER = mesh.GATEWAY

_SCOPE_NAMES = {
    options_pb2.SCOPE_UNSPECIFIED: "public",
    options_pb2.SCOPE_PUBLIC: "public",
    options_pb2.SCOPE_INTERNAL: "internal",
    options_pb2.SCOPE_ANONYMOUS: "anonymous",
    options_pb2.SCOPE_MESH: "mesh",
}

# (secret) -> the key's caller; raises Unauthenticated for an unknown key.
ApiKeyAuthenticator = Callable[[str], Awaitable[Caller]]


def is_routed(method: MethodDescriptor) -> bool:
    return method.GetOptions().HasExtension(annotations_pb2.http)


def required_scope(method: MethodDescriptor) -> str:
    """ "public", "internal", "anonymous" or "mesh", from the contract. An RPC
    without an access option is public when it has an HTTP route, mesh otherwise."""
    options = method.GetOptions()
    if options.HasExtension(options_pb2.access):
        return _SCOPE_NAMES[options.Extensions[options_pb2.access].scope]
    return "public" if is_routed(method) else "mesh"


@dataclass(frozen=True)
class MethodPolicy:
    scope: str
    routed: bool


def method_policies(packages: Iterable[str] | None = None) -> dict[str, MethodPolicy]:
    """`/pkg.Service/Method` -> its policy, for the contract services of `packages`."""
    return {
        path: MethodPolicy(required_scope(method), is_routed(method))
        for path, method in descriptors.methods(packages)
    }


def allowed_issuers(service_name: str) -> frozenset[str]:
    """Mesh services whose tokens `service_name` accepts: the gateway and its declared callers."""
    callers = {s.name for s in mesh.SERVICES if service_name in s.calls}
    return frozenset({GATEWAY_ISSUER, *callers})


def authorize(scope: str, caller: Caller) -> None:
    if scope == "anonymous":
        return
    if scope == "mesh":
        needed = {MESH_SCOPE}
    elif scope == "internal":
        needed = {"internal"}
    else:
        needed = {"public", "internal"}
    if not needed & set(caller.scopes):
        raise PermissionDenied(
            f"this RPC needs a caller with the {scope} scope",
            "SCOPE_INSUFFICIENT",
            {"required_scope": scope},
        )


def _credentials(metadata: Iterable[tuple[str, str | bytes]]) -> tuple[str, str]:
    """("token" | "api_key", value) from the call's metadata."""
    authorization = [v for k, v in metadata if k == AUTHORIZATION_KEY and isinstance(v, str)]
    api_keys = [v for k, v in metadata if k == API_KEY_KEY and isinstance(v, str)]
    if len(authorization) + len(api_keys) > 1:
        raise Unauthenticated("send one credential, in one metadata entry", UNAUTHENTICATED_REASON)
    if api_keys:
        return "api_key", api_keys[0].strip()
    if not authorization:
        raise Unauthenticated(
            "the call carries no credentials: a mesh caller token "
            "(`authorization: Bearer ...`) is required",
            UNAUTHENTICATED_REASON,
        )
    scheme, _, value = authorization[0].strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "apikey" or (scheme.lower() == "bearer" and value.startswith("idk_")):
        return "api_key", value
    if scheme.lower() != "bearer" or not value:
        raise Unauthenticated("use `authorization: Bearer <mesh token>`", UNAUTHENTICATED_REASON)
    return "token", value


class CallerAuthInterceptor(ScopedInterceptor):
    # Health and reflection stay open (probes, grpcurl).
    skips_infrastructure = True

    def __init__(
        self,
        service_name: str,
        verifier: TokenVerifier,
        packages: Iterable[str] | None = None,
        api_keys: ApiKeyAuthenticator | None = None,
    ):
        self.service_name = service_name
        self.verifier = verifier
        self.policies = method_policies(packages)
        self.allowed_issuers = allowed_issuers(service_name)
        self.api_keys = api_keys

    async def authenticate(
        self,
        method: str,
        metadata: Iterable[tuple[str, str | bytes]],
        peer: str | None = None,
    ) -> Caller:
        """The verified caller; `peer` is the workload of the TLS client
        certificate (None on a plaintext port)."""
        policy = self.policies.get(method)
        if policy is None:  # not a contract RPC this server serves
            raise Unauthenticated("unknown RPC", UNAUTHENTICATED_REASON)
        kind, value = _credentials(tuple(metadata))
        if kind == "api_key":
            if self.api_keys is None or not policy.routed:
                raise Unauthenticated(
                    f"{self.service_name} takes mesh caller tokens only"
                    + ("" if self.api_keys is None else " on RPCs without an HTTP route"),
                    UNAUTHENTICATED_REASON,
                )
            caller = await self.api_keys(value)
        else:
            caller = self.verifier.verify(value)
            if peer == "":
                # Over TLS a certificate must name its workload for a token to count.
                raise Unauthenticated(
                    "the client certificate names no workload (no spiffe:// URI SAN), "
                    "so no caller token counts from it",
                    UNAUTHENTICATED_REASON,
                )
            if peer is not None and peer != caller.issuer:
                # A token is only good from the workload it was minted by.
                raise Unauthenticated(
                    "the caller token was minted by another workload than the one presenting it",
                    UNAUTHENTICATED_REASON,
                )
            if caller.issuer not in self.allowed_issuers:
                raise PermissionDenied(
                    f"{caller.issuer} does not call {self.service_name} in this mesh",
                    "CALLER_NOT_ALLOWED",
                    {"issuer": caller.issuer},
                )
            if (
                policy.scope == "mesh"
                and caller.is_mesh_service
                and not mesh.may_call_as_itself(caller.issuer, method)
            ):
                # "mesh" counts only where the caller is declared to call as
                # itself: the gateway's opens its credential checks, no more.
                # (A token without it gets SCOPE_INSUFFICIENT below.)
                raise PermissionDenied(
                    f"{caller.issuer} does not call this RPC as itself in this mesh",
                    "CALLER_NOT_ALLOWED",
                    {"issuer": caller.issuer},
                )
        authorize(policy.scope, caller)
        return caller

    @contextlib.asynccontextmanager
    async def scope(self, method: str, ctx: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        token = call_context.VERIFIED_CALLER.set(await self.admit(method, ctx))
        try:
            yield
        finally:
            call_context.VERIFIED_CALLER.reset(token)

    async def admit(self, method: str, ctx: grpc.aio.ServicerContext) -> Caller:
        """The call's verified caller; a refusal is logged and aborts the call."""
        try:
            peer = meshtls.peer_service(ctx.auth_context() or {})
            caller = await self.authenticate(method, ctx.invocation_metadata() or (), peer)
        except DomainError as exc:
            # Before the call context exists: the caller's request id, if sane, ties it up.
            metadata = dict(
                (k, v) for k, v in (ctx.invocation_metadata() or ()) if isinstance(v, str)
            )
            log.warning(
                "call refused",
                rpc=method,
                status=exc.code,
                reason=exc.reason,
                request_id=client_request_id(metadata.get(call_context.REQUEST_ID_KEY)) or "",
            )
            status = to_grpc_status(exc)
            await ctx.abort(status.code, status.details, status.trailing_metadata)
            raise AssertionError("abort returned") from None  # pragma: no cover
        return caller


__all__ = [
    "API_KEY_ISSUER",
    "CallerAuthInterceptor",
    "MethodPolicy",
    "allowed_issuers",
    "authorize",
    "method_policies",
    "required_scope",
]
