"""Face embeddings from aligned crops, for any manifest-described model.

The dimension, input size, colour order and normalisation all come from the
manifest (`embedding_dimension`, input shape, parameters `input_colour`,
`input_mean`, `input_std`), so the operator's ArcFace-512 model runs through
the same code as the default SFace-128. Embeddings are L2-normalised here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from identity_inference.align import ALIGNMENT_ID, align_face
from identity_inference.manifest import ModelIntegrityError, ModelManifest

if TYPE_CHECKING:
    # Not at run time: the Triton pipeline model imports this module without
    # ONNX Runtime's runner machinery (deploy/triton/face_pipeline_model.py).
    from identity_inference.runners import Runner

MAX_BATCH = 64


@dataclass(frozen=True)
class EmbeddingContract:
    model_id: str
    model_version: str
    dimension: int


class FaceEmbedder:
    def __init__(self, runner: Runner):
        manifest: ModelManifest = runner.manifest
        if manifest.embedding_dimension is None:
            raise ModelIntegrityError([f"model {manifest.id}: not a face_embedding model"])
        self.runner = runner
        self.manifest = manifest
        self.dimension = int(manifest.embedding_dimension)
        self.size = int(manifest.input.shape[-1])
        self.alignment = str(manifest.parameter("alignment", ALIGNMENT_ID))
        self.rgb = str(manifest.parameter("input_colour", "rgb")).lower() == "rgb"
        self.mean = float(manifest.parameter("input_mean", 0.0))
        self.std = float(manifest.parameter("input_std", 1.0))
        self.output = manifest.outputs[0].name

    @property
    def contract(self) -> EmbeddingContract:
        return EmbeddingContract(self.manifest.id, self.manifest.version, self.dimension)

    def align(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return align_face(image, landmarks, self.size)

    def to_batch(self, aligned: list[np.ndarray]) -> np.ndarray:
        stack = np.stack(aligned).astype(np.float32)
        if self.rgb:
            stack = stack[..., ::-1]
        stack = (stack - self.mean) / self.std
        return np.ascontiguousarray(stack.transpose(0, 3, 1, 2))

    def embed(self, aligned: list[np.ndarray]) -> np.ndarray:
        """(N, dimension) L2-normalised float32 embeddings of aligned BGR8 crops."""
        if not aligned:
            return np.zeros((0, self.dimension), dtype=np.float32)
        chunks = []
        for start in range(0, len(aligned), MAX_BATCH):
            raw = self.runner.infer(self.to_batch(aligned[start : start + MAX_BATCH]))[self.output]
            chunks.append(raw.reshape(raw.shape[0], -1))
        vectors = np.concatenate(chunks).astype(np.float32)
        if vectors.shape[1] != self.dimension:
            raise ModelIntegrityError(
                [
                    f"model {self.manifest.id}: produced {vectors.shape[1]} values, "
                    f"manifest says {self.dimension}"
                ]
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)
