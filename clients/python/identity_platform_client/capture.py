"""Capture bundles built and signed the way the SDK does.

The recipe (protos/identity/kyc_tier/v1/CAPTURE_SIGNING.md, and the comments
of `CaptureBundle` and `BundleAttestation` in the contracts):

1. the canonical text, one LF after each line: `identity-bundle-v1`, the
   challenge id, the nonce, the device id, the capture time (RFC 3339, UTC,
   whole seconds, `Z`), the lowercase hex SHA-256 of each frame's bytes in
   bundle order (the baseline frame included), and the lowercase hex SHA-256
   of the SensorData encoding (zero bytes when there are none);
2. `bundleSha256`: the lowercase hex SHA-256 of that text's UTF-8 bytes;
3. the signature: ECDSA P-256 with SHA-256 over the 64 ASCII bytes of that
   hex string (not the raw digest), DER-encoded.

The shared test vectors (contracts/test-vectors/capture-bundle.json) check
this module too (tests/unit/test_partner_client.py).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

DIGEST_PREFIX = "identity-bundle-v1"
ECDSA_P256 = "KEY_ALGORITHM_ECDSA_P256_SHA256"


def timestamp(moment: datetime) -> str:
    """The capture time as digested and sent: UTC, whole seconds, `Z`."""
    if moment.tzinfo is None:
        raise ValueError("the capture time must be timezone-aware")
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def bundle_digest(
    challenge_id: str,
    nonce: str,
    device_id: str,
    captured_at: datetime,
    frames: Sequence[bytes],
    sensors: bytes = b"",
) -> str:
    """`bundleSha256`: lowercase hex SHA-256 of the canonical text."""
    for name, value in (("challenge_id", challenge_id), ("nonce", nonce), ("device_id", device_id)):
        if "\n" in value or "\r" in value:
            raise ValueError(f"{name} must not contain a line break")
    hashed = [hashlib.sha256(item).hexdigest() for item in (*frames, sensors)]
    fields = (DIGEST_PREFIX, challenge_id, nonce, device_id, timestamp(captured_at), *hashed)
    return hashlib.sha256("\n".join((*fields, "")).encode()).hexdigest()


class DeviceKey:
    """A device's ECDSA P-256 key, as the SDK keeps one per customer."""

    def __init__(
        self, device_id: str | None = None, key: ec.EllipticCurvePrivateKey | None = None
    ) -> None:
        self.device_id = device_id or f"dev_{secrets.token_hex(8)}"
        self._key = key or ec.generate_private_key(ec.SECP256R1())

    @classmethod
    def from_pem(cls, device_id: str, private_key_pem: bytes) -> DeviceKey:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the key is not an EC private key")
        return cls(device_id, key)

    @property
    def algorithm(self) -> str:
        return ECDSA_P256

    def public_key_pem(self) -> str:
        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, digest_hex: str) -> bytes:
        """DER ECDSA signature over the ASCII bytes of the hex digest."""
        return self._key.sign(digest_hex.encode("ascii"), ec.ECDSA(hashes.SHA256()))


@dataclass(frozen=True)
class Frame:
    """One captured frame: encoded bytes (JPEG) and its offset in the flash sequence."""

    data: bytes
    offset_ms: int = 0
    baseline: bool = False
    media_type: str = "image/jpeg"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_bundle(
    key: DeviceKey,
    challenge_id: str,
    frames: Sequence[Frame],
    *,
    sensors: Mapping[str, Any] | None = None,
    sensors_encoding: bytes = b"",
    nonce: str | None = None,
    captured_at: datetime | None = None,
) -> dict[str, Any]:
    """The `bundle` of a capture request (JSON), signed with `key`.

    `sensors` is the SensorData in JSON form and `sensors_encoding` its
    deterministic protobuf encoding (both or neither); a nonce is drawn when
    none is given. Keep the returned dict to retry: the same bundle with the
    same nonce returns the original verification."""
    if bool(sensors) != bool(sensors_encoding):
        raise ValueError("pass the sensors with their encoding, or neither")
    nonce = nonce or secrets.token_hex(16)
    moment = captured_at or datetime.now(UTC)
    digest = bundle_digest(
        challenge_id, nonce, key.device_id, moment, [f.data for f in frames], sensors_encoding
    )
    bundle: dict[str, Any] = {
        "frames": [
            {
                "image": {"data": _b64(f.data), "mediaType": f.media_type},
                "offsetMs": f.offset_ms,
                "baseline": f.baseline,
            }
            for f in frames
        ],
        "attestation": {
            "deviceId": key.device_id,
            "nonce": nonce,
            "bundleSha256": digest,
            "signature": _b64(key.sign(digest)),
            "capturedAt": timestamp(moment),
        },
    }
    if sensors:
        bundle["sensors"] = dict(sensors)
    return bundle


def flash_frames(baseline: bytes, flashed: Sequence[bytes], flash_duration_ms: int) -> list[Frame]:
    """A flash capture's frames (a selfie, or a KTP card): the unflashed
    baseline, then one frame per flashed colour at its slot's offset (what the
    SDK records)."""
    return [Frame(baseline, offset_ms=-flash_duration_ms // 2, baseline=True)] + [
        Frame(data, offset_ms=index * flash_duration_ms + flash_duration_ms // 2)
        for index, data in enumerate(flashed)
    ]
