"""Verification by condition (`identity eval conditions --pairs`): FNMR and FMR at
one operating threshold (the matching calibration's FMR 1e-4 threshold, 0.48
for SFace) per pose bucket and per degradation of the second photo of each
pair, with Wilson 95 % intervals.

Pose bucket: the larger |yaw| of the two photos (0-10, 10-20, >= 20 degrees).
Degradations (applied to the second photo only, the first stays the
reference): `blur` (Gaussian, sigma 2 % of the face width), `jpeg_q20`,
`low_resolution` (shrunk so the inter-eye distance is 24 px, enlarged back),
`dark` (gamma 2.2 and 50 % exposure).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from identity_inference import images, quality
from identity_inference.align import align_face
from identity_inference.conditions import Rate
from identity_inference.detector import Face
from identity_inference.pipeline import LIMITS, FacePipeline

POSE_BUCKETS = ((0.0, 10.0, "yaw 0-10"), (10.0, 20.0, "yaw 10-20"), (20.0, 180.0, "yaw >= 20"))


def _blur(image: np.ndarray, face: Face) -> np.ndarray:
    return np.asarray(cv2.GaussianBlur(image, (0, 0), max(0.5, 0.02 * face.box[2])))


def _jpeg(image: np.ndarray, face: Face) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 20])
    assert ok
    return np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR))


def _low_resolution(image: np.ndarray, face: Face) -> np.ndarray:
    inter_eye = float(np.linalg.norm(face.landmarks[1] - face.landmarks[0]))
    scale = min(1.0, 24.0 / max(inter_eye, 1e-6))
    height, width = image.shape[:2]
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC))


def _dark(image: np.ndarray, face: Face) -> np.ndarray:
    linear = (image.astype(np.float32) / 255.0) ** 2.2 * 0.5
    return np.clip(linear ** (1 / 2.2) * 255.0, 0, 255).astype(np.uint8)


DEGRADATIONS: dict[str, Callable[[np.ndarray, Face], np.ndarray]] = {
    "blur": _blur,
    "jpeg_q20": _jpeg,
    "low_resolution": _low_resolution,
    "dark": _dark,
}


def _rates(scores: Sequence[tuple[float, bool]], threshold: float) -> dict:
    genuine = [s for s, same in scores if same]
    impostor = [s for s, same in scores if not same]
    return {
        "fnmr": Rate(sum(s < threshold for s in genuine), len(genuine)).as_dict(),
        "fmr": Rate(sum(s >= threshold for s in impostor), len(impostor)).as_dict(),
    }


def pair_report(
    pipeline: FacePipeline,
    pairs: Sequence[tuple[str, str, bool]],
    folder: Path,
    threshold: float,
) -> dict:
    names = sorted({n for x, y, _ in pairs for n in (x, y)})
    embedded: dict[str, dict[str, np.ndarray]] = {}
    yaw: dict[str, float] = {}
    for name in names:
        image = images.decode((folder / name).read_bytes(), LIMITS)
        faces = pipeline.detector.detect(image)
        if not faces:
            continue
        face = faces[0]
        yaw[name] = abs(quality.estimate_pose(face.landmarks).yaw)
        versions = {"none": image} | {k: f(image, face) for k, f in DEGRADATIONS.items()}
        embedded[name] = {}
        for key, version in versions.items():
            found = pipeline.detector.detect(version) if key != "none" else [face]
            if found:
                aligned = align_face(version, found[0].landmarks, pipeline.embedder.size)
                embedded[name][key] = pipeline.embedder.embed([aligned])[0]
    report: dict = {"threshold": threshold, "pose": {}, "degradation": {}}
    usable = [(x, y, same) for x, y, same in pairs if x in embedded and y in embedded]
    for low, high, label in POSE_BUCKETS:
        scores = [
            (float(embedded[x]["none"] @ embedded[y]["none"]), same)
            for x, y, same in usable
            if low <= max(yaw[x], yaw[y]) < high
        ]
        report["pose"][label] = _rates(scores, threshold)
    for key in ("none", *DEGRADATIONS):
        scores = [
            (float(embedded[x]["none"] @ embedded[y][key]), same)
            for x, y, same in usable
            if key in embedded[y]
        ]
        lost = sum(1 for _, y, _ in usable if key not in embedded[y])
        report["degradation"][key] = _rates(scores, threshold) | {"no_face": lost}
    return report
