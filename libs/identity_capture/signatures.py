"""Device keys and signatures over a bundle digest.

A device registers a SubjectPublicKeyInfo (PEM or DER) for ECDSA P-256 or
Ed25519. It signs the UTF-8 bytes of the hex `bundle_sha256` (ECDSA with
SHA-256, DER-encoded signature; Ed25519 plain).
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

ECDSA_P256 = "ecdsa_p256_sha256"
ED25519 = "ed25519"
ALGORITHMS = (ECDSA_P256, ED25519)


class UnusableKey(ValueError):
    """The public key cannot be used (unparseable, wrong algorithm or curve)."""


_PEM_BEGIN = b"-----BEGIN PUBLIC KEY-----"
_PEM_END = b"-----END PUBLIC KEY-----"


def _one_pem_key(stripped: bytes) -> bool:
    """Whether PEM text is exactly one SubjectPublicKeyInfo block. The PEM
    loader reads the first block and ignores what follows: a second key or
    trailing text would be silently dropped, hiding a client bug."""
    return (
        stripped.startswith(_PEM_BEGIN)
        and stripped.endswith(_PEM_END)
        and stripped.count(b"-----BEGIN") == 1
        and stripped.count(b"-----END") == 1
    )


def load_public_key(algorithm: str, data: bytes) -> bytes:
    """The key as canonical DER SubjectPublicKeyInfo, checked against `algorithm`.
    PEM must be one `PUBLIC KEY` block and nothing else (whitespace aside);
    DER one structure (its loader refuses extra data)."""
    if algorithm not in ALGORITHMS:
        raise UnusableKey(f"unsupported algorithm {algorithm!r}")
    stripped = data.strip()
    pem = stripped.startswith(b"-----BEGIN")
    if pem and not _one_pem_key(stripped):
        raise UnusableKey("must be exactly one PEM PUBLIC KEY block, nothing else")
    try:
        if pem:
            key = serialization.load_pem_public_key(stripped)
        else:
            key = serialization.load_der_public_key(data)
    except (ValueError, TypeError):
        raise UnusableKey("not a SubjectPublicKeyInfo in PEM or DER") from None
    if algorithm == ECDSA_P256:
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise UnusableKey("the key is not an ECDSA P-256 key")
    elif not isinstance(key, ed25519.Ed25519PublicKey):
        raise UnusableKey("the key is not an Ed25519 key")
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(public_key_der: bytes) -> str:
    return hashlib.sha256(public_key_der).hexdigest()


def verify(algorithm: str, public_key_der: bytes, bundle_sha256: str, signature: bytes) -> bool:
    """Whether `signature` signs the UTF-8 bytes of `bundle_sha256` under the key."""
    key = serialization.load_der_public_key(public_key_der)
    message = bundle_sha256.encode("utf-8")
    try:
        if algorithm == ECDSA_P256:
            assert isinstance(key, ec.EllipticCurvePublicKey)
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        elif algorithm == ED25519:
            assert isinstance(key, ed25519.Ed25519PublicKey)
            key.verify(signature, message)
        else:
            return False
    except InvalidSignature:
        return False
    return True
