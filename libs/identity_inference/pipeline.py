"""The whole face pipeline in one process: decode, detect, align, embed, PAD.

Used by the evaluation CLI and the benchmarks (the services split the same
steps across capture-quality, embedding and liveness).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from identity_inference import images
from identity_inference.align import align_face
from identity_inference.detector import Face, FaceDetector
from identity_inference.embedder import FaceEmbedder
from identity_inference.manifest import load_catalogue
from identity_inference.pad import PadResult, PadScorer, pad_crop
from identity_inference.runners import OnnxRunner

LIMITS = images.ImageLimits()


@dataclass
class FacePipeline:
    detector: FaceDetector
    embedder: FaceEmbedder
    pad: PadScorer | None = None

    @classmethod
    def load(
        cls,
        *,
        detector: str = "yunet-2023mar",
        embedding: str = "sface-2021dec",
        pad_models: tuple[str, ...] = ("minifasnet-v2", "minifasnet-v1se"),
        model_dir: Path | None = None,
        with_pad: bool = True,
        pad_dir: Path | None = None,
        threads: int = 0,
    ) -> FacePipeline:
        """The models, verified and loaded; PAD from the packaged weights unless
        `pad_dir` names another copy, or not at all without `with_pad`."""
        catalogue = load_catalogue(model_dir)

        def runner(model_id: str) -> OnnxRunner:
            loaded = OnnxRunner(catalogue[model_id], pad_dir=pad_dir, intra_op_threads=threads)
            loaded.load()
            return loaded

        pad = PadScorer([runner(m) for m in pad_models]) if with_pad else None
        return cls(FaceDetector(runner(detector)), FaceEmbedder(runner(embedding)), pad)

    def primary_face(self, image: np.ndarray) -> Face | None:
        faces = self.detector.detect(image)
        return faces[0] if faces else None

    def embed_image(self, data: bytes) -> np.ndarray | None:
        """The L2-normalised embedding of the largest face, or None without a face."""
        image = images.decode(data, LIMITS)
        face = self.primary_face(image)
        if face is None:
            return None
        return self.embedder.embed([align_face(image, face.landmarks, self.embedder.size)])[0]

    def pad_image(self, data: bytes) -> PadResult | None:
        if self.pad is None:
            raise ValueError("no PAD model configured")
        image = images.decode(data, LIMITS)
        face = self.primary_face(image)
        if face is None:
            return None
        return self.pad.score(
            {
                spec.scale: pad_crop(image, face.box, spec.scale, spec.size)
                for spec in self.pad.specs
            }
        )
