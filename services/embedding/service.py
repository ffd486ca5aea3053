"""How the embedding service is served (see identity_runtime.server)."""

from __future__ import annotations

from identity_platform_api.embedding.v1 import embedding_pb2_grpc
from identity_runtime import mesh
from identity_runtime.server import ServiceSpec
from services.embedding.bootstrap import build
from services.embedding.servicer import EmbeddingServiceServicer
from services.embedding.settings import EmbeddingSettings

SPEC = ServiceSpec.from_mesh(
    mesh.EMBEDDING,
    settings_class=EmbeddingSettings,
    build=build,
    servicers=lambda core, settings: [
        (embedding_pb2_grpc.add_EmbeddingServiceServicer_to_server, EmbeddingServiceServicer(core)),
    ],
)
