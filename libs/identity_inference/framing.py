"""Where the faces sit in the frame: who counts as a second person, whether the
primary face lies inside the frame, and whether the frame leaves room for PAD.

Second faces (MULTIPLE_FACES) are judged against the primary face, because a
detector also fires, weakly, on background patterns, paintings, posters and
blurred bystanders. A secondary detection counts as a second person only
when all three hold (figures from the 62 test photos, docs/inference.md):

- size: its box is at least `secondary_face_min_width_ratio` (0.35) of the
  primary's width;
- confidence: its detector score is at least `secondary_face_min_score`
  (0.80; every primary face of the test photos scores 0.92-0.96, the
  background detections 0.60-0.75) and no more than
  `secondary_face_max_score_gap` (0.12) below the primary's;
- landmarks: a plausible frontal-ish layout: inter-eye distance 0.30-0.65 of
  the box width, eye line within 30 degrees of the primary's, nose below the
  eye line and between the eyes, mouth below the nose, all five points inside
  the box grown by 10 %.

Face inside the frame (FACE_PARTIALLY_OUTSIDE): the detector's predicted box
(before clipping) may overhang the frame by at most 5 % of its size on any
side (its brow/chin bounds are loose), and every landmark must be at least
`min_landmark_margin` x inter-eye distance inside the frame.

PAD framing (FACE_TOO_CLOSE): MiniFASNet is trained on crops of 2.7x and 4x
the face box, capped to what the frame holds. When the frame holds less than
`min_pad_frame_scale` (1.5) x the box in either direction, the models see
little besides skin and score real people as attacks (bona-fide median 0.33
and BPCER 61 % at 1.1x, 19 % at 1.3x, 8 % at 1.5x, 5 % plateau from 1.7x:
docs/inference.md). Such a capture is refused before PAD runs, with
guidance to move back. Padding the crop out to the full scale instead
(constant, replicated or mirrored borders) was measured and rejected: it
lifts the attack photos to 0.5-0.9 (the borders hide the medium's edges).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from identity_inference.detector import Face

if TYPE_CHECKING:
    from identity_inference.quality import QualityProfile

_BOX_OVERHANG = 0.05


def _eye_angle(face: Face) -> float:
    left, right = face.landmarks[0], face.landmarks[1]
    return math.degrees(math.atan2(float(right[1] - left[1]), float(right[0] - left[0])))


def plausible_landmarks(face: Face, primary: Face | None = None) -> bool:
    """Five points laid out like a face seen roughly from the front."""
    points = np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2)
    x, y, w, h = face.box
    grow_w, grow_h = 0.1 * w, 0.1 * h
    inside = (
        (points[:, 0] >= x - grow_w).all()
        and (points[:, 0] <= x + w + grow_w).all()
        and (points[:, 1] >= y - grow_h).all()
        and (points[:, 1] <= y + h + grow_h).all()
    )
    left_eye, right_eye, nose, left_mouth, right_mouth = points
    inter_eye = float(np.linalg.norm(right_eye - left_eye))
    if not inside or not 0.30 <= inter_eye / max(w, 1e-6) <= 0.65:
        return False
    angle = _eye_angle(face)
    reference = _eye_angle(primary) if primary is not None else 0.0
    if abs((angle - reference + 180) % 360 - 180) > 30:
        return False
    # In the face's own upright frame: nose below the eyes and between them,
    # mouth below the nose.
    theta = -math.radians(angle)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    upright = (points - (left_eye + right_eye) / 2) @ rotation.T
    nose_u, mouth_u = upright[2], (upright[3] + upright[4]) / 2
    half = inter_eye / 2
    return bool(
        nose_u[1] > 0.1 * inter_eye
        and abs(nose_u[0]) < half
        and mouth_u[1] > nose_u[1]
        and upright[4][0] > upright[3][0]
    )


def is_second_person(face: Face, primary: Face, profile: QualityProfile) -> bool:
    return (
        face.box[2] >= profile.secondary_face_min_width_ratio * primary.box[2]
        and face.score >= profile.secondary_face_min_score
        and face.score >= primary.score - profile.secondary_face_max_score_gap
        and plausible_landmarks(face, primary)
    )


def count_faces(faces: list[Face], profile: QualityProfile) -> int:
    """The primary face plus every other detection that is a second person."""
    if not faces:
        return 0
    primary = faces[0]
    return 1 + sum(1 for f in faces[1:] if is_second_person(f, primary, profile))


def inside_frame_margin(face: Face, width: int, height: int) -> float:
    """How far the face lies inside the frame, in units of its size: the least of
    the predicted box's distance to each edge (over its width or height, plus
    the allowed overhang) and each landmark's distance to each edge (over the
    inter-eye distance, minus the landmark margin of 0.25). >= 0 is inside."""
    x, y, w, h = face.predicted_box or face.box
    w, h = max(w, 1e-6), max(h, 1e-6)
    box = min(x / w, y / h, (width - x - w) / w, (height - y - h) / h) + _BOX_OVERHANG
    points = np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2)
    inter_eye = max(float(np.linalg.norm(points[1] - points[0])), 1e-6)
    edges = np.concatenate(
        [points[:, 0], points[:, 1], width - points[:, 0], height - points[:, 1]]
    )
    landmarks = float(edges.min()) / inter_eye - 0.25
    return min(box, landmarks)


def pad_frame_scale(face: Face, width: int, height: int) -> float:
    """How many face boxes the frame holds around the face (the largest PAD crop
    scale the frame allows), in the tighter direction."""
    _, _, w, h = face.box
    return min((width - 1) / max(w, 1e-6), (height - 1) / max(h, 1e-6))
