"""Sealing with AES-256-GCM and associated data that binds a ciphertext to its row.

Layout of a sealed value: one format byte (0x01), a 12-byte random nonce, the
ciphertext, the 16-byte tag. The associated data is not stored: the reader
rebuilds it from the row (organisation, customer, record id, model id, ...),
so a ciphertext copied into another row, or a row whose binding columns were
edited, fails authentication instead of opening under the wrong identity.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from identity_crypto.errors import SealedDataUnreadable
from identity_runtime import metrics

FORMAT_V1 = 0x01
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD_BYTES = 1 + NONCE_BYTES + TAG_BYTES
_DOMAIN = b"identity-platform/seal/v1\x00"
_PREFIX = struct.Struct(">I")


def associated_data(record_kind: str, **fields: str | int) -> bytes:
    """Canonical, unambiguous encoding of the binding fields (length-prefixed,
    in sorted name order), so ("ab","c") and ("a","bc") never collide."""
    parts = [record_kind.encode()]
    for name in sorted(fields):
        parts.append(name.encode())
        parts.append(str(fields[name]).encode())
    return b"".join([_PREFIX.pack(len(part)) + part for part in parts])


def template_aad(
    org_id: str,
    customer_id: str,
    enrollment_id: str,
    model_id: str,
    dimension: int,
    template_format: str,
) -> bytes:
    return associated_data(
        "template",
        org_id=org_id,
        customer_id=customer_id,
        enrollment_id=enrollment_id,
        model_id=model_id,
        dimension=dimension,
        template_format=template_format,
    )


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    try:
        return bytes([FORMAT_V1]) + nonce + AESGCM(key).encrypt(nonce, plaintext, _DOMAIN + aad)
    except Exception:
        metrics.SEAL_FAILURES.labels("seal").inc()
        raise


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """The plaintext, or SealedDataUnreadable (never a partial result)."""
    if len(sealed) < OVERHEAD_BYTES or sealed[0] != FORMAT_V1:
        metrics.SEAL_FAILURES.labels("open").inc()
        raise SealedDataUnreadable("a sealed record is truncated or of an unknown format")
    nonce = sealed[1 : 1 + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, sealed[1 + NONCE_BYTES :], _DOMAIN + aad)
    except InvalidTag:
        metrics.SEAL_FAILURES.labels("open").inc()
        raise SealedDataUnreadable(
            "a sealed record failed authentication (wrong key, altered or moved)"
        ) from None
