"""Protobuf <-> domain converters of the embedding service."""

from __future__ import annotations

import numpy as np

from identity_inference.embedder import EmbeddingContract
from identity_inference.images import raw_bgr
from identity_platform_api.common.v1 import types_pb2
from identity_platform_api.embedding.v1 import embedding_pb2 as pb
from identity_runtime.errors import InvalidArgument, invalid_field
from services.embedding.faces import AlignedInput, FaceInput, LandmarkedInput


def face_input(index: int, face: pb.FaceInput) -> FaceInput:
    field = f"faces[{index}]"
    which = face.WhichOneof("face")
    if which == "aligned":
        image = face.aligned.image
        if image.format != types_pb2.PIXEL_FORMAT_BGR8:
            raise InvalidArgument(
                f"{field}.aligned.image: must be BGR8", "RAW_IMAGE_INVALID", {"field": field}
            )
        pixels = raw_bgr(image.width, image.height, image.pixels, 3, f"{field}.aligned.image")
        return AlignedInput(pixels, face.aligned.alignment)
    if which == "landmarked":
        points = np.array([[p.x, p.y] for p in face.landmarked.landmarks], dtype=np.float64)
        if points.shape != (5, 2):
            raise invalid_field(f"{field}.landmarked.landmarks", "exactly five points")
        return LandmarkedInput(face.landmarked.image.data, points)
    raise invalid_field(field, "an aligned face or an image with landmarks is required")


def contract(value: EmbeddingContract) -> types_pb2.EmbeddingContract:
    return types_pb2.EmbeddingContract(
        model_id=value.model_id, model_version=value.model_version, dimension=value.dimension
    )


def embedding(value: EmbeddingContract, vector: np.ndarray) -> types_pb2.Embedding:
    return types_pb2.Embedding(contract=contract(value), values=vector.astype(np.float32).tolist())
