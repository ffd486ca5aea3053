"""The card portrait: face detection on the rectified card and the aligned crop.

The detector is YuNet (2023mar, int8bq) as its identity_inference manifest
pins it (file, sha256), run by OpenCV's FaceDetectorYN, which handles the
int8bq file unchanged. Alignment is identity_inference's, shared with selfies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from identity_inference.align import ALIGNMENT_ID
from identity_inference.align import align_face as shared_align_face
from identity_inference.manifest import ModelManifest, load_catalogue, resolve_path

# The same five-point alignment as the face path, so a card portrait's
# embedding is comparable with a selfie's.
ALIGNMENT = ALIGNMENT_ID


class ModelIntegrityError(RuntimeError):
    """A model file is missing or is not the pinned one."""


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x, y, width, height
    landmarks: tuple[tuple[float, float], ...]  # five points
    confidence: float


def verified_model_bytes(path: Path, sha256: str, what: str) -> bytes:
    """The file's bytes when its sha256 is the pinned one; raises otherwise."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelIntegrityError(f"{what}: cannot read {path}: {exc.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ModelIntegrityError(
            f"{what}: {path} has sha256 {digest}, expected {sha256}; refusing to load it"
        )
    return data


def _yunet_manifest() -> ModelManifest:
    return load_catalogue()["yunet-2023mar"]


def yunet_path() -> Path:
    return resolve_path(_yunet_manifest())


def load_face_detector(
    path: Path | None = None, *, score_threshold: float = 0.6
) -> cv2.FaceDetectorYN:
    """YuNet as its manifest pins it (identity_inference), verified before use."""
    manifest = _yunet_manifest()
    data = verified_model_bytes(path or yunet_path(), manifest.sha256, "face detector (YuNet)")
    buffer = np.frombuffer(data, dtype=np.uint8)
    return cv2.FaceDetectorYN.create(
        "onnx", buffer, np.array([], dtype=np.uint8), (320, 320), score_threshold, 0.3, 50
    )


class PortraitFinder:
    """Faces on a card image; one detector, so one call at a time."""

    def __init__(self, detector: cv2.FaceDetectorYN):
        self._detector = detector

    def detect(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        self._detector.setInputSize((width, height))
        _, found = self._detector.detect(image)
        faces: list[Face] = []
        for row in found if found is not None else []:
            x, y, w, h = (float(v) for v in row[0:4])
            points = tuple((float(row[4 + 2 * i]), float(row[5 + 2 * i])) for i in range(5))
            faces.append(Face((x, y, w, h), points, float(row[14])))
        faces.sort(key=lambda f: f.box[2] * f.box[3], reverse=True)
        return faces


def align_face(image: np.ndarray, face: Face, size: int = 112) -> np.ndarray:
    """The face warped by a 5-point similarity transform onto the ArcFace template."""
    return shared_align_face(image, np.array(face.landmarks, dtype=np.float32), size)
