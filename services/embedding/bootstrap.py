"""Builds the embedding core from settings: the one place that chooses implementations."""

from __future__ import annotations

from identity_runtime.server import Core
from services.embedding.settings import EmbeddingSettings


class EmbeddingCore(Core):
    """The embedding service's domain objects."""


async def build(settings: EmbeddingSettings) -> EmbeddingCore:
    return EmbeddingCore()
