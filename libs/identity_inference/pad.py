"""Passive presentation-attack detection with MiniFASNet (Silent-Face-Anti-Spoofing).

Crop recipe (the models were trained on it and are very sensitive to it):
the detector box (x, y, w, h) is scaled by the model's `crop_scale` around
its centre, the scale is capped so the crop fits the frame, the crop is
shifted (not shrunk) back inside the frame, cut with inclusive integer
corners, and resized to 80x80 BGR. Input is float 0..255, no normalisation.

Fusion: as in the reference implementation, the softmax outputs of the
models are averaged and class 1 is "live"; the fused live probability is
compared with the mean of the models' `live` thresholds (0.5: live must
outweigh both attack classes together, slightly stricter than the
reference's argmax). Measured on the test
photos: image_T1 (live) 1.00, image_F1 (attack) 0.22, image_F2 (attack) 0.002.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from identity_inference.manifest import ModelManifest

if TYPE_CHECKING:
    # Not at run time: the Triton pipeline model imports this module without
    # ONNX Runtime's runner machinery (deploy/triton/face_pipeline_model.py).
    from identity_inference.runners import Runner


def crop_box(
    width: int, height: int, box: tuple[float, float, float, float], scale: float
) -> tuple[int, int, int, int]:
    """Inclusive integer corners (left, top, right, bottom) of the PAD crop."""
    x, y, box_w, box_h = box
    box_w, box_h = max(box_w, 1.0), max(box_h, 1.0)
    scale = min((height - 1) / box_h, (width - 1) / box_w, scale)
    new_w, new_h = box_w * scale, box_h * scale
    centre_x, centre_y = x + box_w / 2, y + box_h / 2
    left, top = centre_x - new_w / 2, centre_y - new_h / 2
    right, bottom = centre_x + new_w / 2, centre_y + new_h / 2
    if left < 0:
        right -= left
        left = 0
    if top < 0:
        bottom -= top
        top = 0
    if right > width - 1:
        left -= right - width + 1
        right = width - 1
    if bottom > height - 1:
        top -= bottom - height + 1
        bottom = height - 1
    return int(left), int(top), int(right), int(bottom)


def pad_crop(
    image: np.ndarray, box: tuple[float, float, float, float], scale: float, size: int = 80
) -> np.ndarray:
    height, width = image.shape[:2]
    left, top, right, bottom = crop_box(width, height, box, scale)
    region = image[max(0, top) : bottom + 1, max(0, left) : right + 1]
    return cv2.resize(region, (size, size))


@dataclass(frozen=True)
class CropSpec:
    model_id: str
    scale: float
    size: int


def crop_spec(manifest: ModelManifest) -> CropSpec:
    return CropSpec(
        manifest.id,
        float(manifest.parameter("crop_scale")),
        int(manifest.parameter("crop_size", 80)),
    )


@dataclass(frozen=True)
class ModelScore:
    """One model's reading of its own crop: the probability of its live class
    and its whole softmax output."""

    model_id: str
    crop_scale: float
    live_score: float
    probabilities: tuple[float, ...]

    @classmethod
    def of(cls, manifest: ModelManifest, spec: CropSpec, probabilities: np.ndarray) -> ModelScore:
        """A model's score from its softmax output on the crop `spec` describes."""
        live_class = int(manifest.parameter("live_class", 1))
        return cls(
            manifest.id,
            spec.scale,
            float(probabilities[live_class]),
            tuple(float(p) for p in probabilities),
        )


@dataclass(frozen=True)
class PadResult:
    """The fused verdict: live when the mean of the models' live scores reaches
    the threshold."""

    live: bool
    fused_live_score: float
    threshold: float
    scores: tuple[ModelScore, ...]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


class PadScorer:
    """Both MiniFASNet models on their own crops, fused."""

    def __init__(self, runners: Sequence[Runner], threshold: float | None = None):
        if not runners:
            raise ValueError("PadScorer needs at least one model")
        self.runners = runners
        self.specs = [crop_spec(r.manifest) for r in runners]
        thresholds = [r.manifest.thresholds.get("live", 0.5) for r in runners]
        self.threshold = float(threshold) if threshold is not None else float(np.mean(thresholds))

    @property
    def model_ids(self) -> list[str]:
        return [f"{r.manifest.id}@{r.manifest.version}" for r in self.runners]

    def score(self, crops: dict[float, np.ndarray]) -> PadResult:
        """`crops` maps crop scale -> 80x80 BGR8 crop (one per model)."""
        return self.score_batch([crops])[0]

    def score_batch(self, faces: Sequence[dict[float, np.ndarray]]) -> list[PadResult]:
        """Several faces' crops, one inference per model (the Triton pipeline
        batches the faces of every frame Triton hands it together)."""
        if not faces:
            return []
        per_model = []
        for runner, spec in zip(self.runners, self.specs, strict=True):
            batch = np.stack([crops[spec.scale].transpose(2, 0, 1) for crops in faces])
            logits = runner.infer(batch.astype(np.float32))[runner.manifest.outputs[0].name]
            per_model.append(_softmax(logits.astype(np.float64)))
        return [self.fuse([probs[index] for probs in per_model]) for index in range(len(faces))]

    def fuse(self, probabilities: Sequence[np.ndarray]) -> PadResult:
        """The verdict from each model's softmax output (in the runners' order)."""
        scores = [
            ModelScore.of(runner.manifest, spec, probs)
            for runner, spec, probs in zip(self.runners, self.specs, probabilities, strict=True)
        ]
        fused = float(np.mean([s.live_score for s in scores]))
        return PadResult(
            live=fused >= self.threshold,
            fused_live_score=fused,
            threshold=self.threshold,
            scores=tuple(scores),
        )
