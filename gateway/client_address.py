"""The client's address, for per-address rate limits (the console sign-in).

The TCP peer, unless it is one of `GATEWAY_TRUSTED_PROXIES` (CIDRs: the
ingress controller or load balancer in front of the gateway): then the
right-most `X-Forwarded-For` entry that is not itself a trusted proxy (the
left-most entries are whatever the client sent and are never trusted).

An IPv6 client is counted by its /64 (one subscriber's prefix: rotating
addresses inside it does not buy more attempts).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(cidrs: Sequence[str]) -> tuple[IPNetwork, ...]:
    """Parsed CIDRs (ValueError names a bad one)."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]
) -> str:
    """The address to count the request against ("unknown" without a peer)."""
    current = _address(peer or "")
    if current is None:
        return "unknown"
    hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
    while trusted and any(current in net for net in trusted) and hops:
        previous = _address(hops.pop())
        if previous is None:
            break
        current = previous
    if isinstance(current, ipaddress.IPv6Address):
        if current.ipv4_mapped is not None:
            return str(current.ipv4_mapped)
        return str(ipaddress.IPv6Network((current, 64), strict=False))
    return str(current)
