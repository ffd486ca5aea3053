"""Head pose from five landmarks by fitting a generic 3D face (PnP), and the
synthetic heads used to measure it.

The generic face is in inter-eye units, x to the image right, y down, z away
from the camera (the face looks along -z): eyes at (+-0.5, 0, 0), nose tip
at (0, 0.585, -0.55), mouth corners at (+-0.44, 1.01, -0.15). The heights
and the mouth width are where YuNet puts its landmarks on the 62 test
portraits (medians; the ArcFace template's 0.49 nose and 1.156 mouth would
read every frontal face as pitched); the depths are anthropometric averages (nose tip
~35 mm and mouth corners ~10 mm in front of the eye centres at a 63 mm
inter-pupillary distance).

`fit_pose` undoes the eye line's in-plane angle, solves the
perspective-n-point problem for these five points (SQPnP, a global solver)
with a pinhole camera whose focal length is the frame's long side (the
capture gate passes a pseudo-frame 8 inter-eye distances wide, nearly
orthographic: the focal length of a photo is unknown), and reads yaw (about
y; positive = nose to the image right), pitch (about x; positive = chin
down) and roll (about z; positive = clockwise in the image) off the rotation.

`synthetic_landmarks` renders a head of given proportions at known angles
through the same camera; `random_head` draws proportions around the generic
face (+-20 % nose depth, +-10 % heights), so the estimator is measured on
heads it does not know (docs/inference.md, "Pose error").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

GENERIC_HEAD = np.array(
    [
        [-0.5, 0.0, 0.0],
        [0.5, 0.0, 0.0],
        [0.0, 0.585, -0.55],
        [-0.44, 1.01, -0.15],
        [0.44, 1.01, -0.15],
    ],
    dtype=np.float64,
)


@dataclass(frozen=True)
class Angles:
    yaw: float
    pitch: float
    roll: float


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head-to-camera rotation for the angles in degrees (conventions above)."""
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    # Yaw turns the nose (at -z) towards +x; pitch turns it towards +y (chin down).
    ry = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def angles_of(matrix: np.ndarray) -> Angles:
    """Inverse of `rotation` (R = Rz Rx Ry)."""
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, float(matrix[2, 1])))))
    yaw = math.degrees(math.atan2(float(matrix[2, 0]), float(matrix[2, 2])))
    roll = math.degrees(math.atan2(-float(matrix[0, 1]), float(matrix[1, 1])))
    return Angles(yaw, pitch, roll)


def camera(width: float, height: float) -> np.ndarray:
    focal = float(max(width, height))
    return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=np.float64)


def fit_pose(landmarks: np.ndarray, width: float, height: float) -> Angles:
    """The generic head's pose that best explains the landmarks. The eye line's
    in-plane angle is undone first (an exact camera roll about the optical
    axis), so yaw and pitch do not depend on how the phone is held."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    k = camera(width, height)
    principal = k[:2, 2]
    eye = points[1] - points[0]
    roll0 = math.degrees(math.atan2(float(eye[1]), float(eye[0])))
    theta = -math.radians(roll0)
    undo = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    upright = (points - principal) @ undo.T + principal
    ok, solved, _ = cv2.solvePnP(
        GENERIC_HEAD, upright.reshape(5, 1, 2), k, None, flags=cv2.SOLVEPNP_SQPNP
    )
    if not ok:
        return Angles(0.0, 0.0, roll0)
    matrix, _ = cv2.Rodrigues(solved)
    fitted = angles_of(matrix)
    return Angles(fitted.yaw, fitted.pitch, roll0 + fitted.roll)


def random_head(rng: np.random.Generator) -> np.ndarray:
    head = GENERIC_HEAD.copy()
    head[2, 2] *= rng.uniform(0.8, 1.2)  # nose depth
    head[2, 1] *= rng.uniform(0.9, 1.1)  # nose height
    mouth_y = rng.uniform(0.9, 1.1)
    head[3:, 1] *= mouth_y
    head[3:, 2] *= rng.uniform(0.5, 1.5)
    head[3:, 0] *= rng.uniform(0.9, 1.1)
    return head


def synthetic_landmarks(
    head: np.ndarray,
    angles: Angles,
    width: float = 1280,
    height: float = 720,
    inter_eye_px: float = 120.0,
) -> np.ndarray:
    """The five landmarks of `head` at `angles`, centred in a width x height frame."""
    k = camera(width, height)
    depth = k[0, 0] / inter_eye_px
    matrix = rotation(angles.yaw, angles.pitch, angles.roll)
    centred = head - head.mean(axis=0)
    in_camera = centred @ matrix.T + np.array([0.0, 0.0, depth])
    projected = in_camera @ k.T
    return (projected[:, :2] / projected[:, 2:3]).astype(np.float64)
