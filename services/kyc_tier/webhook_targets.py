"""Where webhooks may go and how one is sent.

Targets are checked twice: the URL when it is registered (scheme, host, a
literal address), and every resolved address at connect time (see
`GuardedBackend`), so a name that later resolves to a private address is
refused too. Loopback is allowed only when `allow_loopback` is set (the
one-machine run; production refuses that setting). No redirect is followed
and at most `RESPONSE_CAP` bytes of a response body are read.

A delivery is a JSON document `{"id", "type", "created_at", "data"}`, signed
with HMAC-SHA256 over the raw body and sent as both `X-Identity-Signature`
and `X-Quantum-Signature` (seed 001), one `sha256=` value per secret.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpcore

from identity_runtime.addresses import address_literal
from identity_runtime.errors import invalid_field, require
from services.kyc_tier import signing

EVENT_TYPES = frozenset(
    {
        "verification.completed",
        "kyc.tier_changed",
        "stepup.decided",
        "review.decided",
        "customer.erased",
        "endpoint.disabled",
    }
)
TEST_EVENT = "webhook.test"
MAX_URL_LENGTH = 2048
# Bytes of a receiver's response body read at most (the rest is discarded).
RESPONSE_CAP = 4096


class TargetRefused(Exception):
    """The target resolves to an address this deployment does not deliver to."""


def address_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address, loopback: bool) -> bool:
    """Only public unicast addresses, plus loopback when `loopback` is set."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return loopback
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
    )


def check_url(url: str, allow_loopback: bool) -> str:
    """The URL if it may be registered, else INVALID_FIELD naming `url` (never its value)."""
    require(bool(url), "url", "is required")
    require(len(url) <= MAX_URL_LENGTH, "url", f"must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise invalid_field("url", "is not a valid URL") from exc
    require(parts.scheme in ("https", "http"), "url", "must be an https URL")
    require(parts.scheme == "https" or allow_loopback, "url", "must be an https URL")
    host = parts.hostname or ""
    require(bool(host), "url", "must name a host")
    require(not parts.username and not parts.password, "url", "must not carry credentials")
    require(not parts.fragment, "url", "must not carry a fragment")
    require(port is None or 0 < port < 65536, "url", "has an invalid port")
    literal = address_literal(host)
    if literal is not None:
        require(
            address_allowed(literal, allow_loopback),
            "url",
            "must not target a private, loopback or link-local address",
        )
    elif host.lower() == "localhost" or host.lower().endswith(".localhost"):
        require(allow_loopback, "url", "must not target a private, loopback or link-local address")
    return url


def check_events(events: Iterable[str]) -> list[str]:
    chosen = sorted(set(events))
    require(bool(chosen), "events", "must name at least one event type")
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    require(not unknown, "events", "names an unknown event type")
    return chosen


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, refuses it if any address is not allowed, and
    connects to a checked address (so DNS cannot swap in a private one between
    the check and the connection). TLS still verifies the original host name."""

    def __init__(self, allow_loopback: bool):
        self.allow_loopback = allow_loopback
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError("dns_failure") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses or not all(address_allowed(a, self.allow_loopback) for a in addresses):
            raise TargetRefused("address_refused")
        return await self.inner.connect_tcp(
            str(addresses[0]), port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("address_refused")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@dataclass(frozen=True)
class DeliveryResult:
    delivered: bool
    http_status: int
    latency_ms: int
    # "" when delivered; else an error class: timeout, connection_refused,
    # address_refused, dns_failure, tls_error, http_status, network_error.
    error: str


class Sender:
    """Posts one signed document; never follows a redirect (a 3xx is a failure)."""

    def __init__(self, allow_loopback: bool, timeout_seconds: float, ca_file: Path | None = None):
        self.allow_loopback = allow_loopback
        self.timeout_seconds = timeout_seconds
        # The system's trust store, plus the operator's extra CA certificates.
        self.ssl_context = ssl.create_default_context()
        if ca_file is not None:
            self.ssl_context.load_verify_locations(cafile=str(ca_file))

    async def post(
        self, url: str, body: bytes, secrets: Sequence[bytes], event_id: str
    ) -> DeliveryResult:
        headers = [
            (b"Content-Type", b"application/json"),
            (b"User-Agent", b"IdentityPlatform-Webhooks/1"),
            (b"X-Identity-Event-Id", event_id.encode()),
        ] + [(k.encode(), v.encode()) for k, v in signing.signature_headers(secrets, body).items()]
        timeout = self.timeout_seconds
        started = time.perf_counter()
        status = 0
        error = ""
        try:
            async with httpcore.AsyncConnectionPool(
                ssl_context=self.ssl_context,
                network_backend=GuardedBackend(self.allow_loopback),
                max_connections=1,
            ) as pool:
                async with pool.stream(
                    "POST",
                    url,
                    headers=headers,
                    content=body,
                    extensions={
                        "timeout": {
                            "connect": timeout,
                            "read": timeout,
                            "write": timeout,
                            "pool": timeout,
                        }
                    },
                ) as response:
                    status = response.status
                    read = 0
                    async for chunk in response.aiter_stream():
                        read += len(chunk)
                        if read >= RESPONSE_CAP:
                            break
        except TargetRefused:
            error = "address_refused"
        except httpcore.TimeoutException:
            error = "timeout"
        except httpcore.ConnectError as exc:
            text = str(exc)
            if "dns_failure" in text:
                error = "dns_failure"
            elif "SSL" in text or "certificate" in text.lower():
                error = "tls_error"
            else:
                error = "connection_refused"
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol):
            error = "network_error"
        latency_ms = int((time.perf_counter() - started) * 1000)
        delivered = not error and 200 <= status < 300
        if not error and not delivered:
            error = "http_status"
        return DeliveryResult(delivered, status, latency_ms, error)


def event_document(
    event_type: str, created_at: datetime, data: dict[str, Any]
) -> tuple[str, bytes]:
    """(event id, the exact body that is signed and sent)."""
    event_id = f"evt_{uuid.uuid4().hex}"
    document = {
        "id": event_id,
        "type": event_type,
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    return event_id, json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
