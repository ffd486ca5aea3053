"""Where the platform's outbound HTTP may go, and how one request is sent.

Used by kyc-tier's webhooks and face-match's callbacks alike: one policy for
every URL a partner gives the platform to call.

Targets are checked twice: the URL when it is registered (`check_url`:
scheme; a host that is a valid DNS name or an IP address; a literal address
in any spelling, with or without the trailing dot of a fully qualified
name), and at connect time (`GuardedBackend`: the host's spelling judged the
same way, then every resolved address), so a name that later resolves to a
private address is refused too. The connection goes to the address that was
checked, never to the name again (no DNS rebinding between the check and the
connection); TLS still verifies the original host name. Loopback is allowed
only when `allow_loopback` is set (the one-machine run; production refuses
that setting). No redirect is followed and at most `RESPONSE_CAP` bytes of a
response body are read.

https receivers are verified against the system's trust store plus, when the
operator names one, a PEM file of extra CA certificates (a partner's private
CA): `KYC_TIER_WEBHOOK_CA_FILE` and `FACE_MATCH_CALLBACK_CA_FILE`, both
checked at start-up by `ca_file_problem` and loaded by `tls_context`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpcore

from identity_runtime.addresses import IPAddress, address_literal
from identity_runtime.errors import InvalidArgument

# Retries of a delivery (webhooks, Face Match callbacks): exponential backoff
# from RETRY_BACKOFF_BASE, capped at RETRY_BACKOFF_CAP, each wait drawn from
# its upper half (jitter spreads a burst of retries).
RETRY_BACKOFF_BASE = timedelta(seconds=30)
RETRY_BACKOFF_CAP = timedelta(hours=6)


def retry_backoff(attempts: int, rand: Callable[[], float] = random.random) -> timedelta:
    """The wait after the `attempts`-th failed delivery: base * 2^(attempts-1),
    capped, then a uniform draw in its upper half."""
    ceiling = min(RETRY_BACKOFF_CAP, RETRY_BACKOFF_BASE * (2 ** max(0, attempts - 1)))
    return ceiling * (0.5 + 0.5 * rand())


MAX_URL_LENGTH = 2048
# Bytes of a receiver's response body read at most (the rest is discarded).
RESPONSE_CAP = 4096
REFUSED_ADDRESS = "must not target a private, loopback or link-local address"

# Every address a host name resolves to (for `port`); raises OSError when it
# does not resolve. Injected by tests (a rebinding resolver).
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


# Why an attempt failed (`DeliveryResult.error`): a short class about the
# receiver, never its answer's body, its URL or the payload.
DELIVERY_ERRORS = (
    "address_refused",
    "dns_failure",
    "timeout",
    "connection_refused",
    "tls_error",
    "http_status",
    "network_error",
    # A stored URL the HTTP client cannot send (one registered before the
    # URL rules of this release): a failed attempt like any other.
    "invalid_url",
)


def ca_file_problem(ca_file: Path | None) -> str:
    """Why `ca_file` cannot serve as extra CA certificates (a settings
    problem: the service refuses to start); empty when it is unset or a
    readable PEM file holding at least one certificate."""
    if ca_file is None:
        return ""
    try:
        tls_context(ca_file)
    except ssl.SSLError:  # before OSError, its base class
        return "holds no PEM CA certificate"
    except OSError:
        return "is not a readable file"
    return ""


def tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """The system's trust store, plus the CA certificates of `ca_file` (PEM)."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


class TargetRefused(Exception):
    """The target resolves to an address this deployment does not deliver to."""


# NAT64's well-known prefix (RFC 6052): the last 32 bits are an IPv4 address
# a NAT64 gateway connects to. Its local-use prefix (RFC 8215) is never public.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def _translated_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches through a NAT64 gateway (its
    well-known prefix) or a 6to4 relay (2002::/16)."""
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def address_allowed(address: IPAddress, loopback: bool) -> bool:
    """Only public unicast addresses, plus loopback when `loopback` is set. An
    IPv6 address that wraps an IPv4 one is judged by the IPv4 address it
    reaches: `::ffff:127.0.0.1` is this host's loopback, `2002:a9fe:a9fe::`
    is 169.254.169.254 behind a 6to4 relay (Python counts 2002::/16 and
    64:ff9b::/96 as global), and a translated address is never loopback."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            return False
        translated = _translated_ipv4(address)
        if translated is not None:
            return address_allowed(translated, loopback=False)
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
    if address.is_loopback:
        return loopback
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
    )


def check_url(url: str, allow_loopback: bool, field: str = "url", label: str = "") -> str:
    """The URL if it may be registered, else INVALID_FIELD naming `field` in the
    metadata and `label` (default: `field`) in the message, never the value."""
    name = label or field

    def require(condition: bool, problem: str) -> None:
        if not condition:
            raise InvalidArgument(f"{name}: {problem}", "INVALID_FIELD", {"field": field})

    require(bool(url), "is required")
    require(len(url) <= MAX_URL_LENGTH, f"must be at most {MAX_URL_LENGTH} characters")
    try:
        # urlsplit and .port refuse a bad bracketed host or port ("https://[zz]/x").
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidArgument(
            f"{name}: is not a valid URL", "INVALID_FIELD", {"field": field}
        ) from exc
    require(parts.scheme in ("https", "http"), "must be an https URL")
    require(parts.scheme == "https" or allow_loopback, "must be an https URL")
    host = parts.hostname or ""
    require(bool(host), "must name a host")
    require("@" not in parts.netloc, "must not carry credentials")
    # Brackets hold an IPv6 address and nothing else ("[v1.x]" is not a host).
    require(
        "[" not in parts.netloc or address_literal(host) is not None,
        "must name a valid host (a DNS name or an IP address)",
    )
    require(not parts.fragment, "must not carry a fragment")
    require(port is None or 0 < port < 65536, "has an invalid port")
    require(host.isascii(), INTERNATIONAL_HOST)
    host = normalised_host(host)
    literal = address_literal(host)
    if literal is None:
        require(valid_host_name(host), "must name a valid host (a DNS name or an IP address)")
    require(host_allowed(host, allow_loopback), REFUSED_ADDRESS)
    # The HTTP client sends the path and query as they are: a space, a control
    # or a non-ASCII character there cannot be sent (percent-encode them).
    require(
        all(" " < c < "\x7f" for c in url),
        "must be ASCII without spaces (percent-encode other characters)",
    )
    return url


def normalised_host(host: str) -> str:
    """`host` as a resolver reads it: lower case, without the one trailing dot
    of a fully qualified name ("LOCALHOST." is localhost, "10.0.0.1." is
    10.0.0.1 to some resolvers), so that a trailing dot cannot slip a name
    or an address past the checks."""
    host = host.lower()
    return host[:-1] if host.endswith(".") else host


# A label of a host name (RFC 1123 2.1): letters, digits and inner hyphens, at
# most 63 characters. No underscore: it is legal in DNS records but not in a
# host name, and no public CA issues a certificate for one (CA/B Forum SC12).
_HOST_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# A last label that reads as a number: the WHATWG URL parser and resolvers take
# such a name for an IPv4 address, and no top-level domain is numeric.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
MAX_HOST_NAME_LENGTH = 253
INTERNATIONAL_HOST = "must spell an internationalised host name in its ASCII (xn--) form"


def valid_host_name(host: str) -> bool:
    """Whether `host` (normalised) is a DNS host name: at most 253 characters,
    labels of 1 to 63 letters, digits or inner hyphens (RFC 1123; an IDNA
    A-label "xn--..." is one), the last not a number. No space, underscore,
    percent sign, empty label ("a..b") or non-ASCII character."""
    if not host or len(host) > MAX_HOST_NAME_LENGTH:
        return False
    labels = host.split(".")
    return all(_HOST_LABEL.fullmatch(label) for label in labels) and not _NUMERIC_LABEL.fullmatch(
        labels[-1]
    )


def host_allowed(host: str, loopback: bool) -> bool:
    """What the host's spelling alone says (normalised first): a literal
    address must be allowed (`address_allowed`), a localhost name only with
    `loopback`; any other name is judged by the addresses it resolves to."""
    host = normalised_host(host)
    literal = address_literal(host)
    if literal is not None:
        return address_allowed(literal, loopback)
    if host == "localhost" or host.endswith(".localhost"):
        return loopback
    return True


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, refuses it if any address is not allowed, and
    connects to a checked address (so DNS cannot swap in a private one between
    the check and the connection). TLS still verifies the original host name."""

    def __init__(self, allow_loopback: bool, resolver: Resolver | None = None):
        self.allow_loopback = allow_loopback
        self.resolver = resolver or system_resolver
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # The host's spelling is judged as at registration (a literal address
        # or a localhost name, trailing dot or not) before anything is asked.
        if not host_allowed(host, self.allow_loopback):
            raise TargetRefused("address_refused")
        try:
            addresses = await self._addresses(host, port)
        except OSError as exc:
            raise httpcore.ConnectError("dns_failure") from exc
        if not addresses or not all(address_allowed(a, self.allow_loopback) for a in addresses):
            raise TargetRefused("address_refused")
        return await self.inner.connect_tcp(
            str(addresses[0]), port, timeout, local_address, socket_options
        )

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        """A literal address is itself (with its trailing dot, "10.0.0.1." is
        no name a resolver knows); a localhost name is asked without the dot
        (resolvers answer it from their own table, which has no such form);
        any other name is asked as given (a trailing dot keeps the resolver's
        search domains out)."""
        normal = normalised_host(host)
        literal = address_literal(normal)
        if literal is not None:
            return [literal]
        localhost = normal == "localhost" or normal.endswith(".localhost")
        return await self.resolver(normal if localhost else host, port)

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
    # "" when delivered; else one of DELIVERY_ERRORS.
    error: str


class GuardedPoster:
    """Posts one body to a checked target; never follows a redirect (a 3xx is a
    failure). What is sent (headers, signature) is the caller's. An attempt
    ends after `timeout_seconds` whatever the receiver does (error
    `timeout`)."""

    def __init__(
        self,
        allow_loopback: bool,
        timeout_seconds: float,
        ca_file: Path | None = None,
        resolver: Resolver | None = None,
    ):
        self.allow_loopback = allow_loopback
        self.timeout_seconds = timeout_seconds
        self.resolver = resolver
        # The system's trust store, plus the operator's extra CA certificates.
        self.ssl_context = tls_context(ca_file)

    async def post(
        self, url: str, body: bytes, headers: Sequence[tuple[bytes, bytes]]
    ) -> DeliveryResult:
        timeout = self.timeout_seconds
        started = time.perf_counter()
        status = 0
        error = ""
        try:
            # The whole attempt (resolving, connecting, sending, the answer's
            # headers and body) ends by the deadline: httpcore's timeouts
            # bound each read or write only, and a receiver trickling one
            # byte at a time would hold the attempt indefinitely.
            async with (
                asyncio.timeout(timeout),
                httpcore.AsyncConnectionPool(
                    ssl_context=self.ssl_context,
                    network_backend=GuardedBackend(self.allow_loopback, self.resolver),
                    max_connections=1,
                ) as pool,
                pool.stream(
                    "POST",
                    url,
                    headers=list(headers),
                    content=body,
                    extensions={
                        "timeout": {
                            "connect": timeout,
                            "read": timeout,
                            "write": timeout,
                            "pool": timeout,
                        }
                    },
                ) as response,
            ):
                status = response.status
                read = 0
                async for chunk in response.aiter_stream():
                    read += len(chunk)
                    if read >= RESPONSE_CAP:
                        break
        except TargetRefused:
            error = "address_refused"
        except (httpcore.TimeoutException, TimeoutError):
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
        except (TypeError, ValueError, UnicodeError):
            # The client refused the URL itself: one delivery fails, never the
            # batch it was claimed in (probe: a non-ASCII path stalled others).
            error = "invalid_url"
        latency_ms = int((time.perf_counter() - started) * 1000)
        delivered = not error and 200 <= status < 300
        if not error and not delivered:
            error = "http_status"
        return DeliveryResult(delivered, status, latency_ms, error)
