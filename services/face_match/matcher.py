"""Document-agnostic 1:1 matching of a selfie against a reference document.

- The reference's portrait is the *largest* face found on it: ID documents
  (passport, KTP, KITAS, driving licence) carry the holder's main portrait and
  often a smaller "ghost" copy; the ghost image is always the smaller one.
- A face with fewer than `TARGET_EYE_PIXELS` between the eyes is upsampled
  (bicubic) so the eyes are that far apart, and detected again, before
  alignment: low-resolution and printed document portraits align better.
- The selfie's presentation-attack check (the packaged MiniFASNet pair, the
  liveness service's models and fusion) runs on the selfie's face; a score
  under the PAD threshold adds PAD_SUSPECTED. An uploaded selfie is not a
  live capture (no flash challenge, no device signature), so PAD here is a
  signal for review, not a verdict.
- Quality reasons (LOW_RESOLUTION below 30 px between the eyes, BLUR below a
  Laplacian variance of 30 on the face, MULTIPLE_FACES on the selfie,
  PAD_SUSPECTED) lower trust: a similarity above the threshold with any reason is REVIEW, as is a
  similarity within `review_margin` below it. Policy in docs/face-match.md.
- A similarity of `SAME_PHOTO_SIMILARITY` or more adds SAME_PHOTO: the selfie
  is the reference's photo (or a copy of it), not a new capture of the person
  (different photos of one person score 0.88 at most on the labelled pairs,
  the same photo cropped, halved and re-encoded 0.98).

No gRPC here; called on a worker thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from identity_inference import images
from identity_inference.align import align_face
from identity_inference.detector import Face, FaceDetector
from identity_inference.embedder import FaceEmbedder
from identity_inference.evaluation import estimate_fmr
from identity_inference.manifest import ModelManifest
from identity_inference.pad import PadScorer, pad_crop
from identity_runtime.errors import DomainError

TARGET_EYE_PIXELS = 60.0
LOW_RESOLUTION_EYE_PIXELS = 30.0
BLUR_MIN = 30.0
# At or above: the selfie is the reference's photo (module docstring).
SAME_PHOTO_SIMILARITY = 0.95
MAX_UPSAMPLE = 6.0
LIMITS = images.ImageLimits()


class ImageRejected(Exception):
    """The submission fails with `reason` (never a crash)."""

    def __init__(self, reason: str, image: str):
        super().__init__(f"{image}: {reason}")
        self.reason = reason
        self.image = image


def eye_distance(face: Face) -> float:
    left, right = face.landmarks[0], face.landmarks[1]
    return float(np.hypot(*(right - left)))


@dataclass(frozen=True)
class Found:
    image: np.ndarray
    face: Face
    # The face's box in the original image's pixels.
    box: tuple[int, int, int, int]
    eye_pixels: float
    upsampled: bool
    faces: int


class FaceMatcher:
    def __init__(
        self,
        detector: FaceDetector,
        embedder: FaceEmbedder,
        embedding_manifest: ModelManifest,
        review_margin: float,
        pad: PadScorer | None = None,
    ):
        self.pad = pad
        self.detector = detector
        self.embedder = embedder
        self.manifest = embedding_manifest
        self.threshold = embedding_manifest.threshold("verification")
        self.review_margin = review_margin

    def _decode(self, data: bytes, image: str) -> np.ndarray:
        try:
            return images.decode(data, LIMITS, image)
        except DomainError as exc:
            raise ImageRejected(exc.reason, image) from None

    def find(self, pixels: np.ndarray, image: str) -> Found:
        faces = self.detector.detect(pixels)
        if not faces:
            raise ImageRejected("FACE_NOT_FOUND", image)
        main = max(faces, key=lambda f: f.area)
        distance = eye_distance(main)
        x, y, w, h = (int(round(v)) for v in main.box)
        box = (x, y, w, h)
        if 0 < distance < TARGET_EYE_PIXELS:
            scale = min(MAX_UPSAMPLE, TARGET_EYE_PIXELS / distance)
            bigger = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            again = self.detector.detect(bigger)
            if again:
                return Found(
                    bigger, max(again, key=lambda f: f.area), box, distance, True, len(faces)
                )
        return Found(pixels, main, box, distance, False, len(faces))

    @staticmethod
    def sharpness(found: Found) -> float:
        x, y, w, h = (int(v) for v in found.face.box)
        crop = found.image[max(y, 0) : y + h, max(x, 0) : x + w]
        if crop.size == 0:
            return 0.0
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        return float(cv2.Laplacian(grey, cv2.CV_64F).var())

    def reasons(self, found: Found, image: str) -> list[str]:
        reasons = []
        if found.eye_pixels < LOW_RESOLUTION_EYE_PIXELS:
            reasons.append("LOW_RESOLUTION")
        if self.sharpness(found) < BLUR_MIN:
            reasons.append("BLUR")
        if image == "selfie" and found.faces > 1:
            reasons.append("MULTIPLE_FACES")
        return reasons

    def decide(self, similarity: float, reasons: list[str]) -> str:
        if similarity >= self.threshold:
            return "REVIEW" if reasons else "MATCH"
        if similarity >= self.threshold - self.review_margin:
            return "REVIEW"
        return "NO_MATCH"

    def presentation_attack(self, pixels: np.ndarray, found: Found) -> dict[str, Any] | None:
        """The selfie's PAD result on its original pixels (None without PAD models)."""
        if self.pad is None:
            return None
        box = tuple(float(v) for v in found.box)
        result = self.pad.score(
            {
                spec.scale: pad_crop(pixels, box, spec.scale, spec.size)  # type: ignore[arg-type]
                for spec in self.pad.specs
            }
        )
        return {
            "live": result.live,
            "score": round(result.fused_live_score, 4),
            "threshold": result.threshold,
            "model_ids": self.pad.model_ids,
        }

    def match(self, selfie: bytes, reference: bytes) -> dict[str, Any]:
        """The result document; ImageRejected when an image cannot be used."""
        started = time.perf_counter()
        selfie_pixels = self._decode(selfie, "selfie")
        found = {
            "selfie": self.find(selfie_pixels, "selfie"),
            "reference": self.find(self._decode(reference, "reference"), "reference"),
        }
        pad = self.presentation_attack(selfie_pixels, found["selfie"])
        aligned = [
            align_face(f.image, f.face.landmarks, self.embedder.size) for f in found.values()
        ]
        vectors = self.embedder.embed(aligned)
        similarity = float(np.dot(vectors[0], vectors[1]))
        reasons = {name: self.reasons(f, name) for name, f in found.items()}
        if pad is not None and not pad["live"]:
            reasons["selfie"].append("PAD_SUSPECTED")
        if similarity >= SAME_PHOTO_SIMILARITY:
            reasons["selfie"].append("SAME_PHOTO")
        quality: list[dict[str, Any]] = [
            {
                "image": name,
                "reasons": reasons[name],
                "inter_eye_pixels": round(f.eye_pixels, 1),
                "upsampled": f.upsampled,
            }
            for name, f in found.items()
        ]
        all_reasons = [r for listed in reasons.values() for r in listed]
        x, y, w, h = found["reference"].box
        return {
            "decision": self.decide(similarity, all_reasons),
            "similarity": round(similarity, 6),
            "fmr_at_score": estimate_fmr(self.manifest.calibration, similarity),
            "threshold": self.threshold,
            "quality": quality,
            "reference_portrait": {"x": x, "y": y, "width": w, "height": h},
            "detector_model_id": self.detector.model_id,
            "embedding_model_id": self.embedder.contract.model_id,
            "pad": pad,
            "processing_ms": int((time.perf_counter() - started) * 1000),
        }
