"""Settings of the HTTP gateway, from `GATEWAY_*` environment variables."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import client_address
from identity_runtime import mesh
from identity_runtime.settings import (
    MIB,
    MeshCallerSettings,
    ProcessSettings,
    address_setting,
    addresses,
    load_settings,
    setting,
    tcp_port_problem,
)

ENV_PREFIX = "GATEWAY"
RATE_LIMIT_SCHEMES = ("memory", "redis", "rediss", "redis+unix")


@dataclass(frozen=True, kw_only=True)
class GatewaySettings(MeshCallerSettings, ProcessSettings):
    """Everything the gateway reads from its environment."""

    port: int = setting(mesh.GATEWAY_DEFAULT_PORT, "HTTP port; 0 picks a free one (tests)")
    capture_quality_address: str = address_setting(mesh.CAPTURE_QUALITY)
    liveness_address: str = address_setting(mesh.LIVENESS)
    embedding_address: str = address_setting(mesh.EMBEDDING)
    matching_address: str = address_setting(mesh.MATCHING)
    kyc_tier_address: str = address_setting(mesh.KYC_TIER)
    audit_address: str = address_setting(mesh.AUDIT)
    face_match_address: str = address_setting(mesh.FACE_MATCH)
    oauth_issuer: str = setting(
        "identity-platform/face-match",
        "iss of the OAuth access tokens the gateway accepts as bearer tokens (face-match's)",
    )
    oauth_jwks_cache_seconds: float = setting(
        300.0, "How long the gateway keeps face-match's published token keys (JWKS)"
    )
    max_body_bytes: int = setting(16 * MIB, "Largest HTTP request body accepted (413 above)")
    body_read_timeout_seconds: float = setting(
        10.0,
        "Time a request's line and headers have to arrive, and then its body, within the "
        "request's deadline (408 after either: a slow sender holds no connection longer)",
    )
    max_message_bytes: int = setting(
        24 * MIB, "Largest gRPC message sent to or received from a service"
    )
    default_deadline_seconds: float = setting(
        10.0, "Deadline of each request, propagated to the services"
    )
    stream_deadline_seconds: float = setting(
        600.0,
        "Deadline of a streamed response (the CSV exports), from its first byte to its last",
    )
    health_timeout_seconds: float = setting(
        1.0, "Timeout of each service's health check in /api/healthz"
    )
    rate_limit_storage: str = setting(
        "memory://",
        "Rate-limit counters: memory:// (one gateway) or redis://host:port[/db] "
        "(shared by every replica)",
    )
    trusted_proxies: tuple[str, ...] = setting(
        (),
        "CIDRs of the proxies in front of the gateway (ingress, load balancer): for their "
        "requests the client's address is taken from X-Forwarded-For (per-address limits)",
    )
    failed_credentials_per_5_min: int = setting(
        30,
        "Refused API keys, tokens and OAuth client secrets one client address may send in "
        "5 minutes; past that its refusals are 429 with Retry-After instead of 401 (a right "
        "credential is never refused; 0: no limit)",
    )
    rate_limit_key_prefix: str = setting(
        "identity-gateway", "Prefix of the rate-limit keys in the shared store"
    )
    auth_cache_seconds: float = setting(
        30.0,
        "How long a resolved API key (or OAuth client) is trusted before asking kyc-tier "
        "(face-match) again",
    )
    auth_cache_max_entries: int = setting(
        10_000, "Most API keys remembered at once (least recently used go first)"
    )
    auth_revocation_check_seconds: float = setting(
        1.0,
        "How often each gateway asks kyc-tier whether an API key was revoked, and "
        "face-match whether an OAuth client was (cached ones are dropped when one was; "
        "0 asks on every request)",
    )
    access_log: bool = setting(
        True, "One structured log line per request (no payloads, no query strings)"
    )
    sdk_demo: bool = setting(
        False,
        "Serve the web SDK's demo page at /sdk-demo and its dev-only token helper "
        "(development only: `identity up` turns it on; never in production)",
    )
    sdk_demo_api_key_file: Path | None = setting(
        None,
        "API key (file) the /sdk-demo helper mints SDK sessions with: it stays on the "
        "server, the browser gets a session token only",
    )

    def validate(self) -> list[tuple[str, str]]:
        problems = tcp_port_problem("port", self.port) + super().validate()
        for service in mesh.SERVICES:
            address = self.service_addresses()[service.package]
            host, sep, port = address.rpartition(":")
            if not sep or not host or not port.isdigit():
                problems.append((f"{service.package}_address", f"{address!r} is not host:port"))
        if self.max_body_bytes < 1024:
            problems.append(("max_body_bytes", "must be at least 1024"))
        # A JSON body decodes to a smaller protobuf message (base64 is 4/3 of
        # its bytes), so the gRPC limit must not be the tighter one.
        if self.max_message_bytes < self.max_body_bytes:
            problems.append(("max_message_bytes", "must be at least max_body_bytes"))
        for name in (
            "default_deadline_seconds",
            "body_read_timeout_seconds",
            "health_timeout_seconds",
            "stream_deadline_seconds",
        ):
            if getattr(self, name) <= 0:
                problems.append((name, "must be positive"))
        if self.auth_cache_seconds < 0:
            problems.append(("auth_cache_seconds", "must not be negative (0 disables the cache)"))
        if self.auth_revocation_check_seconds < 0:
            problems.append(("auth_revocation_check_seconds", "must not be negative"))
        if self.mesh_signing_key_file is None and not self.mesh_signing_key.strip():
            problems.append(
                (
                    "mesh_signing_key_file",
                    "required: the gateway signs each call's caller token "
                    f"(set {ENV_PREFIX}_MESH_SIGNING_KEY_FILE)",
                )
            )
        if self.mesh_tls == "on":
            for name in ("mesh_tls_cert_file", "mesh_tls_key_file", "mesh_tls_ca_file"):
                if getattr(self, name) is None:
                    problems.append((name, "required while MESH_TLS is on (the default)"))
        if self.sdk_demo and self.sdk_demo_api_key_file is None:
            problems.append(("sdk_demo_api_key_file", "required when SDK_DEMO is on"))
        if self.auth_cache_max_entries < 1:
            problems.append(("auth_cache_max_entries", "must be at least 1"))
        try:
            client_address.networks(self.trusted_proxies)
        except ValueError as exc:
            problems.append(("trusted_proxies", f"CIDRs such as 10.0.0.0/8: {exc}"))
        scheme = self.rate_limit_storage.partition("://")[0]
        if "://" not in self.rate_limit_storage or scheme not in RATE_LIMIT_SCHEMES:
            problems.append(
                (
                    "rate_limit_storage",
                    f"must start with one of {', '.join(s + '://' for s in RATE_LIMIT_SCHEMES)}",
                )
            )
        return problems

    def service_addresses(self) -> dict[str, str]:
        """Proto package -> host:port, for every service of the mesh."""
        return addresses(self, mesh.SERVICES)

    def replace(self, **changes: Any) -> GatewaySettings:
        return dataclasses.replace(self, **changes)


def load(environ: dict[str, str] | None = None) -> GatewaySettings:
    return load_settings(GatewaySettings, ENV_PREFIX, environ)
