from identity_platform_api.common.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LandmarkedImage(_message.Message):
    __slots__ = ("image", "landmarks")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    LANDMARKS_FIELD_NUMBER: _ClassVar[int]
    image: _types_pb2.Image
    landmarks: _containers.RepeatedCompositeFieldContainer[_types_pb2.Point]
    def __init__(self, image: _Optional[_Union[_types_pb2.Image, _Mapping]] = ..., landmarks: _Optional[_Iterable[_Union[_types_pb2.Point, _Mapping]]] = ...) -> None: ...

class FaceInput(_message.Message):
    __slots__ = ("aligned", "landmarked")
    ALIGNED_FIELD_NUMBER: _ClassVar[int]
    LANDMARKED_FIELD_NUMBER: _ClassVar[int]
    aligned: _types_pb2.AlignedFace
    landmarked: LandmarkedImage
    def __init__(self, aligned: _Optional[_Union[_types_pb2.AlignedFace, _Mapping]] = ..., landmarked: _Optional[_Union[LandmarkedImage, _Mapping]] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("face",)
    FACE_FIELD_NUMBER: _ClassVar[int]
    face: FaceInput
    def __init__(self, face: _Optional[_Union[FaceInput, _Mapping]] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("embedding",)
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    embedding: _types_pb2.Embedding
    def __init__(self, embedding: _Optional[_Union[_types_pb2.Embedding, _Mapping]] = ...) -> None: ...

class EmbedBatchRequest(_message.Message):
    __slots__ = ("faces",)
    FACES_FIELD_NUMBER: _ClassVar[int]
    faces: _containers.RepeatedCompositeFieldContainer[FaceInput]
    def __init__(self, faces: _Optional[_Iterable[_Union[FaceInput, _Mapping]]] = ...) -> None: ...

class EmbedBatchResponse(_message.Message):
    __slots__ = ("embeddings",)
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    embeddings: _containers.RepeatedCompositeFieldContainer[_types_pb2.Embedding]
    def __init__(self, embeddings: _Optional[_Iterable[_Union[_types_pb2.Embedding, _Mapping]]] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetModelInfoResponse(_message.Message):
    __slots__ = ("contract", "backend", "default_threshold", "licence")
    CONTRACT_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    LICENCE_FIELD_NUMBER: _ClassVar[int]
    contract: _types_pb2.EmbeddingContract
    backend: str
    default_threshold: float
    licence: str
    def __init__(self, contract: _Optional[_Union[_types_pb2.EmbeddingContract, _Mapping]] = ..., backend: _Optional[str] = ..., default_threshold: _Optional[float] = ..., licence: _Optional[str] = ...) -> None: ...
