"""The address a URL's host names literally, in any spelling a resolver accepts.

Outbound targets (kyc-tier's webhooks, face-match's callbacks) are refused
when they name a private, loopback or link-local address. Besides dotted
quads and IPv6, resolvers read hex, octal, decimal and short IPv4 forms
("0x0a000001", "012.0.0.1", "167772161", "10.1" are all 10.0.0.1), so a
check that only tries `ipaddress.ip_address` lets them through.
"""

from __future__ import annotations

import ipaddress
import re
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LEGACY_IPV4 = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)


def address_literal(host: str) -> IPAddress | None:
    """The address `host` names literally; None for a name ("cafe.bad")."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _LEGACY_IPV4.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:  # not numeric after all
        return None
