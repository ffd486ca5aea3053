"""The `Idempotency-Key` header: checked here, honoured by kyc-tier.

On a POST the header travels to the service as the `idempotency-key` gRPC
metadata; kyc-tier keeps the first response per organisation and key for
24 h and refuses the key with another body (services/kyc_tier/idempotency.py,
docs/gateway.md). Capture routes are idempotent by their bundle's nonce and
need no key; the header is still forwarded (and ignored there).
"""

from __future__ import annotations

from gateway import errors

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_METADATA = "idempotency-key"
MAX_KEY_LENGTH = 255


def idempotency_key(value: str | None, verb: str) -> str:
    """The header's key to forward ("" for none, or on a method other than POST)."""
    if value is None or verb != "POST":
        return ""
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not value.isascii() or not value.isprintable():
        raise errors.invalid_field(
            IDEMPOTENCY_HEADER, f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
        )
    return value
