"""HMAC-SHA256 signatures (seed 001): kyc-tier's outgoing webhooks and
incoming Dukcapil evidence, and Face Match's completion callbacks.

Webhooks and callbacks are signed over the raw body and sent as both
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

from identity_runtime.errors import require

SIGNATURE_HEADERS = ("X-Identity-Signature", "X-Quantum-Signature")
_PREFIX = "sha256="
# A rotated-out secret keeps signing for this long (default, at most), so that
# a receiver has time to deploy the new one.
DEFAULT_OVERLAP_SECONDS = 86_400
MAX_OVERLAP_SECONDS = 7 * 86_400


def sign(secret: bytes, body: bytes) -> str:
    return _PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_headers(secret: bytes | Sequence[bytes], body: bytes) -> dict[str, str]:
    """Each header carries one signature per secret, comma-separated (two
    during a secret rotation's overlap window)."""
    secrets = [secret] if isinstance(secret, bytes) else list(secret)
    value = ", ".join(sign(s, body) for s in secrets)
    return {header: value for header in SIGNATURE_HEADERS}


def rotation_overlap(overlap_seconds: int) -> int:
    """The overlap a secret rotation asked for (0: the default), or
    INVALID_FIELD `overlap_seconds` outside 1..MAX_OVERLAP_SECONDS."""
    overlap = overlap_seconds or DEFAULT_OVERLAP_SECONDS
    require(
        0 < overlap <= MAX_OVERLAP_SECONDS,
        "overlap_seconds",
        f"must be between 1 and {MAX_OVERLAP_SECONDS}",
    )
    return overlap


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
