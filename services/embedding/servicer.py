"""gRPC servicer of the embedding service: convert, call the core, convert.

RPCs not overridden here answer UNIMPLEMENTED / NOT_IMPLEMENTED (the error
interceptor turns the generated base's NotImplementedError into a rich status).
"""

from __future__ import annotations

from identity.embedding.v1 import embedding_pb2_grpc
from services.embedding.bootstrap import EmbeddingCore


class EmbeddingServiceServicer(embedding_pb2_grpc.EmbeddingServiceServicer):
    def __init__(self, core: EmbeddingCore):
        self.core = core
