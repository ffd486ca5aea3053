"""Capture-quality measures of a face (ISO/IEC 19794-5 profile of the product brief).

Each measure is reported with its value, the accepted range as text, whether
it passed and a stable reason code when it did not. What each value is:

- yaw_deg, pitch_deg, roll_deg: head pose from a generic 3D face fitted to the
  five landmarks (PnP, `identity_inference.pose`); on rendered heads of
  varied proportions at known angles with 1.5 % landmark noise the mean
  absolute error is 2.1 degrees yaw, 3.5 pitch, 0.8 roll (the former
  nose-offset reading: 3.7 / 5.5 / 3.1; docs/inference.md, "Pose error").
  Positive yaw = the nose points to the image right; positive pitch = chin down.
- inter_eye_distance_px: distance between the eye landmarks in frame pixels.
- blur_laplacian_var: variance of the Laplacian of the grey face box
  resampled to 160 px wide, so that the number does not depend on how large
  the face is in the frame (measured: sharp photos 68..2100, median 297;
  Gaussian blur of 1 % of the face width brings every test face under 91).
- face_area_ratio: face box area / frame area.
- illumination_mean: mean luma (0..255) of the inner face region. A camera
  frame cannot measure lux; this is the exposure the face got.
- exposure_clipped_ratio: share of inner-face pixels at <= 5 or >= 250.
- resolution_short_side_px: the frame's short side.
- face_count: the primary face plus every detection judged a second person
  against it (size, detector confidence, landmark layout: see
  `identity_inference.framing`); background patterns and far smaller
  bystanders are ignored.
- face_inside_frame: how far the face box and landmarks lie inside the frame,
  in face units (>= 0 inside; FACE_PARTIALLY_OUTSIDE below).
- pad_frame_scale: how many face boxes the frame holds around the face (the
  PAD crops need 1.6; FACE_TOO_CLOSE below). Selfies only.
- effective_resolution_px: the short side the frame's detail corresponds to
  (`identity_inference.resolution`); an upscaled picture reads about its
  source's size (RESOLUTION_TOO_LOW).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from identity_inference import framing, pose, resolution
from identity_inference.detector import Face

BLUR_REFERENCE_WIDTH = 160


@dataclass(frozen=True)
class Pose:
    """Head rotation in degrees (positive yaw: the nose points to the image
    right; positive pitch: chin down)."""

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True)
class ExposureLimits:
    """Accepted exposure of the inner face region: its mean luma (0..255) and
    its share of clipped pixels (<= 5 or >= 250)."""

    min_mean: float = 60.0
    max_mean: float = 210.0
    max_clipped_ratio: float = 0.15


@dataclass(frozen=True)
class QualityProfile:
    """Accepted ranges; one per capture kind."""

    # The largest head rotation accepted either way, in degrees.
    max_abs_pose: Pose = Pose(yaw=15.0, pitch=10.0, roll=8.0)
    min_inter_eye_px: float = 90.0
    min_blur_var: float = 100.0
    min_face_area_ratio: float = 0.20
    exposure: ExposureLimits = ExposureLimits()
    min_short_side_px: int = 480
    # A second face counts when its box is at least this fraction of the primary's width,
    # its detector score at least the minimum and close to the primary's, and its
    # landmarks plausible (identity_inference.framing).
    secondary_face_min_width_ratio: float = 0.35
    secondary_face_min_score: float = 0.80
    secondary_face_max_score_gap: float = 0.12
    # The frame must hold this many face boxes around the face for the PAD crops
    # (0 = not checked: no PAD on reference images).
    min_pad_frame_scale: float = 1.5


# A live selfie: the full profile of the product brief.
SELFIE = QualityProfile()
# A partner reference image or a KTP portrait: pose and blur apply; frame
# filling and resolution are relaxed (a KTP portrait is small).
REFERENCE = QualityProfile(
    min_inter_eye_px=28.0, min_face_area_ratio=0.0, min_short_side_px=112, min_pad_frame_scale=0.0
)


@dataclass(frozen=True)
class Measure:
    name: str
    value: float
    threshold: str
    passed: bool
    reason_code: str = ""


def estimate_pose(landmarks: np.ndarray, width: float = 0.0, height: float = 0.0) -> Pose:
    """Yaw, pitch and roll in degrees: a generic 3D face fitted to the five
    landmarks (`identity_inference.pose`) in a width x height frame (unknown:
    a frame 8 inter-eye distances wide around the face, nearly orthographic)."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    if width <= 0 or height <= 0:
        inter_eye = max(float(np.linalg.norm(points[1] - points[0])), 1e-6)
        centre = points.mean(axis=0)
        width = height = 8 * inter_eye
        points = points - centre + width / 2
    angles = pose.fit_pose(points, width, height)
    return Pose(yaw=angles.yaw, pitch=angles.pitch, roll=angles.roll)


def inner_face_region(face: Face, width: int, height: int) -> tuple[int, int, int, int]:
    """The central part of the box (skin, little hair or background): x0, y0, x1, y1."""
    x, y, w, h = face.box
    x0, x1 = int(x + 0.2 * w), int(x + 0.8 * w)
    y0, y1 = int(y + 0.25 * h), int(y + 0.85 * h)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(width, max(x1, x0 + 1)), min(height, max(y1, y0 + 1))
    return x0, y0, x1, y1


def blur_variance(image: np.ndarray, face: Face) -> float:
    x, y, w, h = (int(round(v)) for v in face.box)
    region = image[max(0, y) : y + h, max(0, x) : x + w]
    if region.size == 0:
        return 0.0
    region = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)
    scale = BLUR_REFERENCE_WIDTH / region.shape[1]
    target = (BLUR_REFERENCE_WIDTH, max(1, round(region.shape[0] * scale)))
    resized = cv2.resize(
        region, target, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    return float(cv2.Laplacian(resized, cv2.CV_64F).var())


def _range(name: str, value: float, limit: float, reason: str) -> Measure:
    return Measure(
        name,
        value,
        f"[{-limit:g}, {limit:g}]",
        abs(value) <= limit,
        "" if abs(value) <= limit else reason,
    )


def _at_least(name: str, value: float, limit: float, reason: str, strict: bool = False) -> Measure:
    passed = value > limit if strict else value >= limit
    return Measure(
        name, value, f"{'>' if strict else '>='} {limit:g}", passed, "" if passed else reason
    )


def assess(image: np.ndarray, faces: list[Face], profile: QualityProfile) -> list[Measure]:
    """Every measure for the primary (largest) face of a BGR frame."""
    height, width = image.shape[:2]
    short_side = float(min(width, height))
    measures = [
        _at_least(
            "resolution_short_side_px", short_side, profile.min_short_side_px, "RESOLUTION_TOO_LOW"
        )
    ]
    count = framing.count_faces(faces, profile)
    if count == 0:
        measures.append(Measure("face_count", 0, "== 1", False, "FACE_NOT_FOUND"))
        return measures
    measures.append(
        Measure("face_count", count, "== 1", count == 1, "" if count == 1 else "MULTIPLE_FACES")
    )
    face = faces[0]
    # Without the frame size: near-orthographic, robust to the unknown focal
    # length (measured as accurate as a focal of the frame's long side).
    head = estimate_pose(face.landmarks)
    limit = profile.max_abs_pose
    measures.append(_range("yaw_deg", head.yaw, limit.yaw, "YAW_OUT_OF_RANGE"))
    measures.append(_range("pitch_deg", head.pitch, limit.pitch, "PITCH_OUT_OF_RANGE"))
    measures.append(_range("roll_deg", head.roll, limit.roll, "ROLL_OUT_OF_RANGE"))
    inter_eye = float(np.linalg.norm(face.landmarks[1] - face.landmarks[0]))
    measures.append(
        _at_least(
            "inter_eye_distance_px",
            inter_eye,
            profile.min_inter_eye_px,
            "INTER_EYE_DISTANCE_TOO_SMALL",
        )
    )
    measures.append(
        _at_least(
            "blur_laplacian_var",
            blur_variance(image, face),
            profile.min_blur_var,
            "FACE_TOO_BLURRY",
            strict=True,
        )
    )
    area_ratio = face.area / float(width * height)
    measures.append(
        _at_least(
            "face_area_ratio",
            area_ratio,
            profile.min_face_area_ratio,
            "FACE_TOO_SMALL",
            strict=True,
        )
    )
    x0, y0, x1, y1 = inner_face_region(face, width, height)
    skin = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    mean = float(skin.mean()) if skin.size else 0.0
    exposure = profile.exposure
    ok = exposure.min_mean <= mean <= exposure.max_mean
    reason = "" if ok else ("UNDEREXPOSED" if mean < exposure.min_mean else "OVEREXPOSED")
    measures.append(
        Measure(
            "illumination_mean", mean, f"[{exposure.min_mean:g}, {exposure.max_mean:g}]", ok, reason
        )
    )
    dark = float((skin <= 5).mean()) if skin.size else 0.0
    bright = float((skin >= 250).mean()) if skin.size else 0.0
    clipped = dark + bright
    ok = clipped <= exposure.max_clipped_ratio
    reason = "" if ok else ("OVEREXPOSED" if bright >= dark else "UNDEREXPOSED")
    measures.append(
        Measure("exposure_clipped_ratio", clipped, f"<= {exposure.max_clipped_ratio:g}", ok, reason)
    )
    measures.extend(_framing(image, face, profile))
    return measures


def _framing(image: np.ndarray, face: Face, profile: QualityProfile) -> list[Measure]:
    height, width = image.shape[:2]
    margin = framing.inside_frame_margin(face, width, height)
    measures = [_at_least("face_inside_frame", margin, 0.0, "FACE_PARTIALLY_OUTSIDE")]
    if profile.min_pad_frame_scale > 0:
        scale = framing.pad_frame_scale(face, width, height)
        measures.append(
            _at_least("pad_frame_scale", scale, profile.min_pad_frame_scale, "FACE_TOO_CLOSE")
        )
    effective = resolution.effective_short_side(image, face)
    measures.append(
        _at_least(
            "effective_resolution_px",
            effective,
            resolution.EFFECTIVE_FRACTION * profile.min_short_side_px,
            "RESOLUTION_TOO_LOW",
        )
    )
    return measures


def colour_sample(
    image: np.ndarray, face: Face | None
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Mean BGR on the inner face and on the frame outside an enlarged face box
    (the whole frame when there is no face): flash-challenge evidence."""
    height, width = image.shape[:2]
    if face is None:
        mean = cv2.mean(image)[:3]
        return (0.0, 0.0, 0.0), (float(mean[0]), float(mean[1]), float(mean[2]))
    x0, y0, x1, y1 = inner_face_region(face, width, height)
    face_mean = cv2.mean(image[y0:y1, x0:x1])[:3]
    x, y, w, h = face.box
    bx0, by0 = max(0, int(x - 0.25 * w)), max(0, int(y - 0.25 * h))
    bx1, by1 = min(width, int(x + 1.25 * w)), min(height, int(y + 1.25 * h))
    # Background = whole frame minus the enlarged face box, from sums (no mask).
    total = np.array(cv2.sumElems(image)[:3])
    box = (
        np.array(cv2.sumElems(image[by0:by1, bx0:bx1])[:3])
        if by1 > by0 and bx1 > bx0
        else np.zeros(3)
    )
    remaining = width * height - max(0, by1 - by0) * max(0, bx1 - bx0)
    bg_mean = (total - box) / remaining if remaining > 0 else np.zeros(3)
    return (
        (float(face_mean[0]), float(face_mean[1]), float(face_mean[2])),
        (float(bg_mean[0]), float(bg_mean[1]), float(bg_mean[2])),
    )
