"""gRPC servicer of the embedding service: convert, call the core, convert."""

from __future__ import annotations

import asyncio
from typing import Any

from identity_platform_api.embedding.v1 import embedding_pb2 as pb
from identity_platform_api.embedding.v1 import embedding_pb2_grpc
from identity_runtime.server import CoreServicer
from services.embedding import mapping
from services.embedding.bootstrap import EmbeddingCore


class EmbeddingServiceServicer(
    CoreServicer[EmbeddingCore], embedding_pb2_grpc.EmbeddingServiceServicer
):
    async def Embed(self, request: pb.EmbedRequest, _: Any) -> pb.EmbedResponse:
        faces = [mapping.face_input(0, request.face)]
        vectors = await asyncio.to_thread(self.core.embeddings.embed, faces)
        return pb.EmbedResponse(
            embedding=mapping.embedding(self.core.embeddings.contract, vectors[0])
        )

    async def EmbedBatch(self, request: pb.EmbedBatchRequest, _: Any) -> pb.EmbedBatchResponse:
        faces = [mapping.face_input(i, face) for i, face in enumerate(request.faces)]
        vectors = await asyncio.to_thread(self.core.embeddings.embed, faces)
        contract = self.core.embeddings.contract
        return pb.EmbedBatchResponse(embeddings=[mapping.embedding(contract, v) for v in vectors])

    async def GetModelInfo(
        self, request: pb.GetModelInfoRequest, _: Any
    ) -> pb.GetModelInfoResponse:
        embeddings = self.core.embeddings
        return pb.GetModelInfoResponse(
            contract=mapping.contract(embeddings.contract),
            backend=embeddings.backend,
            default_threshold=embeddings.default_threshold,
            licence=embeddings.licence,
        )
