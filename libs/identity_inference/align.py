"""Five-point similarity alignment to the ArcFace 112x112 template.

The same function aligns faces in capture-quality (crops sent downstream)
and in the embedding service (when a caller sends a frame plus landmarks),
so both paths feed the embedding model identical pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

ALIGNMENT_ID = "arcface-5pt-112"
ALIGNED_SIZE = 112

# ArcFace reference points for a 112x112 crop (insightface; OpenCV's
# FaceRecognizerSF uses the same), in DetectedFace landmark order.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(source: np.ndarray, target: np.ndarray = ARCFACE_TEMPLATE) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping
    `source` points onto `target` (Umeyama 1991); a 2x3 matrix."""
    src = np.asarray(source, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(target, dtype=np.float64).reshape(-1, 2)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    d = np.ones(2)
    if np.linalg.det(covariance) < 0:
        d[1] = -1
    rotation = u @ np.diag(d) @ vt
    variance = (src_c**2).sum() / len(src)
    scale = (singular * d).sum() / variance if variance > 0 else 1.0
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """The face warped to the template: `size` x `size` BGR8."""
    template = ARCFACE_TEMPLATE * (size / ALIGNED_SIZE)
    matrix = similarity_transform(landmarks, template)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)
