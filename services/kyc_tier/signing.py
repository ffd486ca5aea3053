"""HMAC-SHA256 signatures: outgoing webhooks and incoming Dukcapil evidence.

Webhooks are signed over the raw body and sent as both
`X-Identity-Signature: sha256=<hex>` and `X-Quantum-Signature: sha256=<hex>`
(the suite-wide migration to the latter is on the 2026 roadmap; receivers may
check either). Verification compares in constant time and accepts either
header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

SIGNATURE_HEADERS = ("X-Identity-Signature", "X-Quantum-Signature")
_PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    return _PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_headers(secret: bytes | Sequence[bytes], body: bytes) -> dict[str, str]:
    """Each header carries one signature per secret, comma-separated (two
    during a webhook secret rotation's overlap window)."""
    secrets = [secret] if isinstance(secret, bytes) else list(secret)
    value = ", ".join(sign(s, body) for s in secrets)
    return {header: value for header in SIGNATURE_HEADERS}


def verify(secret: bytes, body: bytes, signature: str) -> bool:
    """True when any of the comma-separated `sha256=` values matches."""
    expected = sign(secret, body)
    return any(
        part.strip().startswith(_PREFIX) and hmac.compare_digest(expected, part.strip())
        for part in signature.split(",")
    )


def verify_headers(secret: bytes, body: bytes, headers: Mapping[str, str]) -> bool:
    """True when any accepted signature header verifies."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return any(verify(secret, body, lowered.get(h.lower(), "")) for h in SIGNATURE_HEADERS)


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: what evidence is signed over."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
