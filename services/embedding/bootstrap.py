"""Builds the embedding core from settings: the one place that chooses ONNX Runtime or Triton."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from identity_inference import images, pack
from identity_inference.embedder import FaceEmbedder
from identity_inference.runners import Runner
from identity_inference.triton import TritonRunner
from identity_runtime.server import Core
from services.embedding.faces import Embeddings
from services.embedding.settings import EmbeddingSettings


@dataclass(frozen=True)
class EmbeddingOverrides:
    """Ports to use instead of the ones built from settings (None = build the real one)."""

    # The embedding model's runner (ONNX Runtime in-process or Triton), loaded.
    runner: Runner | None = None


@dataclass
class EmbeddingCore(Core):
    """The embedding service's domain objects."""

    embeddings: Embeddings

    async def ready(self) -> tuple[bool, str]:
        contract = self.embeddings.contract
        return (
            True,
            f"{contract.model_id}@{contract.model_version} ({contract.dimension}-d) "
            f"on {self.embeddings.backend}",
        )

    async def close(self) -> None:
        self.embeddings.embedder.runner.unload()


def build_runner(settings: EmbeddingSettings) -> Runner:
    manifest = pack.embedding_manifest(settings, settings.embedding_model)
    if settings.backend == "triton":
        runner = TritonRunner(
            manifest,
            settings.triton_url,
            model_name=settings.triton_model_name or None,
            timeout_seconds=settings.triton_timeout_seconds,
            wait_seconds=settings.triton_wait_seconds,
        )
        runner.load()
        pack.announce(manifest, settings)
        return runner
    return pack.onnx_runner(manifest, settings)


def build_embeddings(settings: EmbeddingSettings, runner: Runner | None = None) -> Embeddings:
    return Embeddings(
        FaceEmbedder(runner or build_runner(settings)),
        settings.backend,
        images.ImageLimits(max_pixels=settings.max_image_pixels),
    )


async def build(
    settings: EmbeddingSettings, *, overrides: EmbeddingOverrides | None = None
) -> EmbeddingCore:
    chosen = overrides or EmbeddingOverrides()
    return EmbeddingCore(
        embeddings=await asyncio.to_thread(build_embeddings, settings, chosen.runner)
    )
