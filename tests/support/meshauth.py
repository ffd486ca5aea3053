"""The tests' one way to authenticate to a service: caller tokens signed with
keys made here (once per test process), trusted by every service the tests
start (`start_service` and the in-process mesh add `service_env`).

    stub.Verify(request, metadata=caller_metadata("org_a"))
"""

from __future__ import annotations

import functools
from typing import Any

import grpc

from identity_runtime import mesh
from identity_runtime.authz import GATEWAY_ISSUER
from identity_runtime.meshauth import (
    TokenSigner,
    TrustedKeys,
    generate_private_key_pem,
    load_private_key,
)

# The processes that sign in the mesh: the gateway and the services that call others.
SIGNERS = (GATEWAY_ISSUER, *(s.name for s in mesh.SERVICES if s.calls))


@functools.cache
def signing_key_pem(issuer: str) -> str:
    return generate_private_key_pem().decode()


@functools.cache
def trusted_keys_json() -> str:
    return TrustedKeys.document(
        {name: [load_private_key(signing_key_pem(name)).public_key()] for name in SIGNERS}
    )


def signer(issuer: str) -> TokenSigner:
    """The signer a mesh process of that name uses (the gateway speaks for partners)."""
    return TokenSigner(
        issuer, load_private_key(signing_key_pem(issuer)), mesh_identity=issuer != GATEWAY_ISSUER
    )


def service_env(env_prefix: str) -> dict[str, str]:
    """A service's (or, with "GATEWAY", the gateway's) token settings."""
    env = {f"{env_prefix}_MESH_SIGNING_KEY": signing_key_pem(GATEWAY_ISSUER)}
    if env_prefix != "GATEWAY":
        env = {f"{env_prefix}_MESH_TRUSTED_KEYS": trusted_keys_json()}
        service = next((s for s in mesh.SERVICES if s.env_prefix == env_prefix), None)
        if service is not None and service.name in SIGNERS:
            env[f"{env_prefix}_MESH_SIGNING_KEY"] = signing_key_pem(service.name)
    return env


def caller_metadata(
    org_id: str = "",
    *,
    scopes: tuple[str, ...] = ("public", "internal"),
    actor: str = "api_key:key_test",
    issuer: str = "kyc-tier",
) -> list[tuple[str, str]]:
    """Metadata with a fresh caller token. By default the token is kyc-tier's (a
    mesh service: it may call every service but kyc-tier and carries "mesh");
    `issuer="gateway"` makes a partner's token as the gateway forwards it."""
    token = signer(issuer).mint(org_id, actor, scopes)
    return [("authorization", f"Bearer {token}")]


def issuer_for(service_name: str) -> str:
    """Who calls `service_name` in the mesh: kyc-tier calls the others, the gateway kyc-tier."""
    return "kyc-tier" if service_name in mesh.KYC_TIER.calls else GATEWAY_ISSUER


class CallerTokens(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """Adds a fresh caller token to every call that carries no credentials of its own."""

    def __init__(self, service_name: str, org_id: str):
        self.issuer = issuer_for(service_name)
        self.org_id = org_id

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        if "authorization" not in metadata and "x-api-key" not in metadata:
            for key, value in caller_metadata(self.org_id, issuer=self.issuer):
                metadata.add(key, value)
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=details.timeout,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)
