"""A test "SDK signer": what the mobile SDK does with its device key, for tests,
benchmarks and local demos. Never used by a service."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from identity_capture.digest import DigestInput, bundle_sha256
from identity_capture.signatures import ECDSA_P256, ED25519


@dataclass(frozen=True)
class SignedBundle:
    device_id: str
    nonce: str
    captured_at: datetime
    bundle_sha256: str
    signature: bytes

    def attestation_json(self) -> dict[str, str]:
        """The bundle's `attestation` as the REST API takes it."""
        return {
            "deviceId": self.device_id,
            "nonce": self.nonce,
            "bundleSha256": self.bundle_sha256,
            "signature": base64.b64encode(self.signature).decode(),
            "capturedAt": self.captured_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


class SdkSigner:
    """A device key pair that signs bundle digests like the SDK."""

    def __init__(self, algorithm: str = ECDSA_P256, device_id: str | None = None):
        self.algorithm = algorithm
        self.device_id = device_id or f"dev_{secrets.token_hex(8)}"
        self._key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
        if algorithm == ECDSA_P256:
            self._key = ec.generate_private_key(ec.SECP256R1())
        elif algorithm == ED25519:
            self._key = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(f"unsupported algorithm {algorithm!r}")

    def public_key_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def public_key_der(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign_digest(self, digest_hex: str) -> bytes:
        message = digest_hex.encode("utf-8")
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(message, ec.ECDSA(hashes.SHA256()))
        return self._key.sign(message)

    def sign_bundle(
        self,
        *,
        challenge_id: str,
        frames: Sequence[bytes],
        sensors: bytes = b"",
        nonce: str | None = None,
        captured_at: datetime | None = None,
    ) -> SignedBundle:
        nonce = nonce or secrets.token_hex(16)
        captured_at = (captured_at or datetime.now(UTC)).replace(microsecond=0)
        digest = bundle_sha256(
            DigestInput(challenge_id, nonce, self.device_id, captured_at, frames, sensors)
        )
        return SignedBundle(self.device_id, nonce, captured_at, digest, self.sign_digest(digest))
