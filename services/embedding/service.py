"""How the embedding service is served (see identity_runtime.server)."""

from __future__ import annotations

from identity_runtime import mesh
from identity_runtime.server import ServiceSpec
from services.embedding.bootstrap import build
from services.embedding.servicer import EmbeddingServiceServicer
from services.embedding.settings import EmbeddingSettings

SPEC = ServiceSpec.from_mesh(
    mesh.EMBEDDING,
    settings_class=EmbeddingSettings,
    build=build,
    servicers=[EmbeddingServiceServicer],
)
