"""Embedding faces: aligned crops (preferred) or a frame plus five landmarks.

A frame is decoded with the same limits as capture-quality and aligned with
the same function, so both inputs give the embedding the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from identity_inference import images
from identity_inference.embedder import MAX_BATCH, EmbeddingContract, FaceEmbedder
from identity_runtime.errors import InvalidArgument, invalid_field


@dataclass(frozen=True)
class AlignedInput:
    image: np.ndarray
    alignment: str


@dataclass(frozen=True)
class LandmarkedInput:
    data: bytes
    landmarks: np.ndarray


FaceInput = AlignedInput | LandmarkedInput


@dataclass(frozen=True)
class Embeddings:
    embedder: FaceEmbedder
    backend: str
    limits: images.ImageLimits

    @property
    def contract(self) -> EmbeddingContract:
        return self.embedder.contract

    @property
    def default_threshold(self) -> float:
        return float(self.embedder.manifest.thresholds.get("verification", 0.0))

    @property
    def licence(self) -> str:
        return self.embedder.manifest.licence

    def _aligned(self, index: int, face: FaceInput) -> np.ndarray:
        field = f"faces[{index}]"
        size = self.embedder.size
        if isinstance(face, AlignedInput):
            if face.alignment and face.alignment != self.embedder.alignment:
                raise invalid_field(
                    f"{field}.aligned.alignment", f"this model expects {self.embedder.alignment}"
                )
            if face.image.shape[:2] != (size, size):
                raise InvalidArgument(
                    f"{field}.aligned.image: the model takes {size}x{size} crops",
                    "RAW_IMAGE_INVALID",
                    {"field": field},
                )
            return face.image
        if face.landmarks.shape != (5, 2) or not np.isfinite(face.landmarks).all():
            raise invalid_field(f"{field}.landmarked.landmarks", "exactly five finite points")
        frame = images.decode(face.data, self.limits, f"{field}.landmarked.image.data")
        return self.embedder.align(frame, face.landmarks)

    def embed(self, faces: list[FaceInput]) -> np.ndarray:
        if not 1 <= len(faces) <= MAX_BATCH:
            raise invalid_field("faces", f"1 to {MAX_BATCH} faces")
        # Validate and align everything before the model runs.
        aligned = [self._aligned(i, face) for i, face in enumerate(faces)]
        return self.embedder.embed(aligned)
