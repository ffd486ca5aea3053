"""The canonical capture-bundle digest (protos/identity/kyc_tier/v1/resources.proto, CaptureBundle).

SHA-256 over the UTF-8 text

    "identity-bundle-v1\\n" + challenge_id + "\\n" + nonce + "\\n" + device_id + "\\n"
    + captured_at (RFC 3339, UTC, whole seconds, "Z") + "\\n"
    + for each frame in order: hex SHA-256 of its encoded bytes + "\\n"
    + hex SHA-256 of the serialized SensorData + "\\n"

The device signs the UTF-8 bytes of the resulting lowercase hex string.
Liveness and kyc-tier compute it the same way with this module; the SDK
implements the same text recipe. `sensors` is the SensorData message as the
bundle carries it (its bytes as received); callers holding a message
serialise it deterministically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

PREFIX = "identity-bundle-v1"


def rfc3339_seconds(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("captured_at must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class DigestInput:
    """What the digest covers (the web SDK's DigestInput)."""

    challenge_id: str
    nonce: str
    device_id: str
    captured_at: datetime
    frames: Sequence[bytes]
    # The SensorData bytes as the bundle carries them (empty: none).
    sensors: bytes = b""


def canonical_text(facts: DigestInput) -> str:
    lines = [
        PREFIX,
        facts.challenge_id,
        facts.nonce,
        facts.device_id,
        rfc3339_seconds(facts.captured_at),
    ]
    lines += [hashlib.sha256(frame).hexdigest() for frame in facts.frames]
    lines.append(hashlib.sha256(facts.sensors).hexdigest())
    return "".join(line + "\n" for line in lines)


def bundle_sha256(facts: DigestInput) -> str:
    """Lowercase hex SHA-256 of the canonical text."""
    return hashlib.sha256(canonical_text(facts).encode("utf-8")).hexdigest()
