"""Settings of the embedding service, from `EMBEDDING_*` environment variables."""

from __future__ import annotations

from dataclasses import dataclass

from identity_runtime.settings import ServiceSettings


@dataclass(frozen=True, kw_only=True)
class EmbeddingSettings(ServiceSettings):
    """Everything the embedding service reads from its environment."""
