"""Evaluation by condition: PAD by framing, simulated attacks by type, and the
capture gates' refusals of genuine photos (`identity eval conditions`).

Framings cut from each photo around its detected face (the frame holds k face
boxes in the tighter direction, clipped to the photo): `tight` k = 1.15 (a
selfie cropped to the face), `sdk` k = 1.67 (the web SDK's oval: the face box
~60 % of the frame's height), `loose` k = 3 (arm's length). Rates come with
Wilson 95 % intervals.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from identity_inference import attacks, framing, quality
from identity_inference.detector import Face, FaceDetector
from identity_inference.pad import PadScorer, pad_crop

FRAMINGS = {"tight": 1.15, "sdk": 1.67, "loose": 3.0}


def wilson(errors: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of errors/total."""
    if total == 0:
        return 0.0, 1.0
    p = errors / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Rate:
    errors: int
    total: int

    def as_dict(self) -> dict:
        low, high = wilson(self.errors, self.total)
        rate = self.errors / self.total if self.total else 0.0
        return {
            "errors": self.errors,
            "total": self.total,
            "rate": round(rate, 4),
            "ci95": [round(low, 4), round(high, 4)],
        }


def frame_around(image: np.ndarray, face: Face, k: float) -> np.ndarray:
    x, y, w, h = face.box
    cx, cy = x + w / 2, y + h / 2
    height, width = image.shape[:2]
    x0, y0 = int(max(0, cx - k * w / 2)), int(max(0, cy - k * h / 2))
    x1, y1 = int(min(width, cx + k * w / 2)), int(min(height, cy + k * h / 2))
    return image[y0:y1, x0:x1]


@dataclass
class ConditionEvaluator:
    detector: FaceDetector
    pad: PadScorer
    profile: quality.QualityProfile = quality.SELFIE

    def _pad_score(self, image: np.ndarray, face: Face) -> float:
        crops = {s.scale: pad_crop(image, face.box, s.scale, s.size) for s in self.pad.specs}
        return self.pad.score(crops).fused_live_score

    def framing_report(self, photos: Sequence[np.ndarray]) -> dict:
        """Bona-fide PAD scores per framing: before (PAD on every capture) and
        after (captures the gate sends back with FACE_TOO_CLOSE never reach PAD)."""
        report = {}
        for name, k in FRAMINGS.items():
            scores, too_close = [], []
            for photo in photos:
                faces = self.detector.detect(photo)
                if not faces:
                    continue
                framed = frame_around(photo, faces[0], k)
                inner = self.detector.detect(framed)
                if not inner:
                    continue
                scores.append(self._pad_score(framed, inner[0]))
                height, width = framed.shape[:2]
                scale = framing.pad_frame_scale(inner[0], width, height)
                too_close.append(scale < self.profile.min_pad_frame_scale)
            s, refused = np.asarray(scores), np.asarray(too_close, dtype=bool)
            passed = s[~refused]
            report[name] = {
                "frame_scale": k,
                "median_live_score": round(float(np.median(s)), 4) if len(s) else None,
                "p10_live_score": round(float(np.percentile(s, 10)), 4) if len(s) else None,
                "bpcer_before": Rate(int((s < self.pad.threshold).sum()), len(s)).as_dict(),
                "face_too_close": int(refused.sum()),
                "bpcer_after": Rate(
                    int((passed < self.pad.threshold).sum()), len(passed)
                ).as_dict(),
            }
        return report

    def attack_report(self, photos: Sequence[np.ndarray], seed: int = 7) -> dict:
        """APCER per simulated attack type (faces found in the attack image only),
        and BPCER of the same photos as bona fide."""
        bona = [self._first_score(p) for p in photos]
        bona_scores = [b for b in bona if b is not None]
        report: dict = {
            "bona_fide": Rate(
                sum(b < self.pad.threshold for b in bona_scores), len(bona_scores)
            ).as_dict()
        }
        for attack in attacks.ATTACK_TYPES:
            scores = []
            for index, photo in enumerate(photos):
                score = self._first_score(attacks.simulate(photo, attack, seed + index))
                if score is not None:
                    scores.append(score)
            accepted = sum(s >= self.pad.threshold for s in scores)
            report[attack] = {
                "apcer": Rate(int(accepted), len(scores)).as_dict(),
                "median_live_score": round(float(np.median(scores)), 4) if scores else None,
            }
        return report

    def _first_score(self, image: np.ndarray) -> float | None:
        faces = self.detector.detect(image)
        return self._pad_score(image, faces[0]) if faces else None

    def gate_report(self, photos: Sequence[np.ndarray], names: Sequence[str]) -> dict:
        """Per gate (reason code): how many genuine photos it refused, and which."""
        refused: Counter[str] = Counter()
        which: dict[str, list[str]] = {}
        passed = 0
        for photo, name in zip(photos, names, strict=True):
            measures = quality.assess(photo, self.detector.detect(photo), self.profile)
            codes = sorted({m.reason_code for m in measures if not m.passed})
            passed += not codes
            for code in codes:
                refused[code] += 1
                which.setdefault(code, []).append(name)
        return {
            "photos": len(photos),
            "passed_every_gate": passed,
            "refused_by_gate": {
                code: {"count": n, "photos": which[code]} for code, n in sorted(refused.items())
            },
        }
