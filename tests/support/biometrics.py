"""Helpers for the biometric tests: real photos, frames made for a flash challenge,
signed bundles.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from identity_capture.sdk import SdkSigner, SignedBundle
from identity_inference.manifest import PACKAGED_PAD_DIR
from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.liveness.v1 import liveness_pb2
from tests.support import TESTDATA

if TYPE_CHECKING:
    from identity_platform_api.capture_quality.v1 import capture_quality_pb2

PAD_DIR = PACKAGED_PAD_DIR
FACES = TESTDATA / "faces"
SPOOF = TESTDATA / "spoof"


def photo(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


def photo_bytes(path: Path) -> bytes:
    return path.read_bytes()


def jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def tint(image: np.ndarray, colour_hex: str, strength: float = 0.15) -> np.ndarray:
    """The frame as lit by a screen flashing `colour_hex`: each channel scaled
    towards the colour (light multiplies reflectance)."""
    value = colour_hex.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) / 255.0 for i in (0, 2, 4))
    gain = (1 - strength) + strength * np.array([b, g, r])
    return np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def flash_frames(image: np.ndarray, sequence: list[str]) -> list[bytes]:
    return [jpeg(tint(image, colour)) for colour in sequence]


def screen_flash_frames(
    image: np.ndarray, sequence: list[str], reflectance: float = 0.04, strength: float = 0.15
) -> list[bytes]:
    """`image` shown on a screen while the phone flashes `sequence`: the screen
    emits its own light and reflects only `reflectance` of the flash (matte or
    anti-glare glass), added uniformly; a physical surface multiplies it (tint)."""
    frames = []
    for colour in sequence:
        value = colour.lstrip("#")
        r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
        added = reflectance * strength * np.array([b, g, r], dtype=np.float32)
        frames.append(jpeg(np.clip(image.astype(np.float32) + added, 0, 255).astype(np.uint8)))
    return frames


def check_request(
    *,
    customer_id: str,
    purpose: types_pb2.ChallengePurpose.ValueType,
    challenge_id: str,
    signed: SignedBundle,
    assessment: capture_quality_pb2.AssessFaceResponse,
    flash_duration_ms: int,
    computed_sha256: str | None = None,
) -> liveness_pb2.CheckLivenessRequest:
    """What kyc-tier sends liveness for a bundle it assessed with capture-quality."""
    attestation = types_pb2.BundleAttestation(
        device_id=signed.device_id,
        nonce=signed.nonce,
        bundle_sha256=signed.bundle_sha256,
        signature=signed.signature,
    )
    attestation.captured_at.FromDatetime(signed.captured_at)
    return liveness_pb2.CheckLivenessRequest(
        customer_id=customer_id,
        purpose=purpose,
        challenge_id=challenge_id,
        attestation=attestation,
        computed_bundle_sha256=computed_sha256 or signed.bundle_sha256,
        pad_crops=list(assessment.crops.pad_crops),
        frames=[
            liveness_pb2.FrameEvidence(
                frame_index=f.frame_index,
                offset_ms=f.frame_index * flash_duration_ms,
                colour=f.colour,
                face_found=bool(f.faces),
            )
            for f in assessment.frames
        ],
    )


__all__ = [
    "SdkSigner",
    "photo",
    "photo_bytes",
    "jpeg",
    "tint",
    "flash_frames",
    "check_request",
]
