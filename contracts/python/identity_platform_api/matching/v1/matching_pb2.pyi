import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from identity_platform_api.common.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Enrollment(_message.Message):
    __slots__ = ("enrollment_id", "customer_id", "source", "contract", "active", "verification_id", "created_at", "retired_at", "sealed_size_bytes")
    ENROLLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    RETIRED_AT_FIELD_NUMBER: _ClassVar[int]
    SEALED_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    enrollment_id: str
    customer_id: str
    source: _types_pb2.EnrollmentSource
    contract: _types_pb2.EmbeddingContract
    active: bool
    verification_id: str
    created_at: _timestamp_pb2.Timestamp
    retired_at: _timestamp_pb2.Timestamp
    sealed_size_bytes: int
    def __init__(self, enrollment_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., source: _Optional[_Union[_types_pb2.EnrollmentSource, str]] = ..., contract: _Optional[_Union[_types_pb2.EmbeddingContract, _Mapping]] = ..., active: _Optional[bool] = ..., verification_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., retired_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sealed_size_bytes: _Optional[int] = ...) -> None: ...

class EnrollRequest(_message.Message):
    __slots__ = ("customer_id", "embedding", "source", "verification_id", "search_duplicates", "threshold")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEARCH_DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    embedding: _types_pb2.Embedding
    source: _types_pb2.EnrollmentSource
    verification_id: str
    search_duplicates: bool
    threshold: float
    def __init__(self, customer_id: _Optional[str] = ..., embedding: _Optional[_Union[_types_pb2.Embedding, _Mapping]] = ..., source: _Optional[_Union[_types_pb2.EnrollmentSource, str]] = ..., verification_id: _Optional[str] = ..., search_duplicates: _Optional[bool] = ..., threshold: _Optional[float] = ...) -> None: ...

class DuplicateCandidate(_message.Message):
    __slots__ = ("customer_id", "enrollment_id", "score")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    enrollment_id: str
    score: float
    def __init__(self, customer_id: _Optional[str] = ..., enrollment_id: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class EnrollResponse(_message.Message):
    __slots__ = ("enrollment", "duplicates")
    ENROLLMENT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    enrollment: Enrollment
    duplicates: _containers.RepeatedCompositeFieldContainer[DuplicateCandidate]
    def __init__(self, enrollment: _Optional[_Union[Enrollment, _Mapping]] = ..., duplicates: _Optional[_Iterable[_Union[DuplicateCandidate, _Mapping]]] = ...) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = ("probe", "customer_id", "reference_embedding", "threshold")
    PROBE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    probe: _types_pb2.Embedding
    customer_id: str
    reference_embedding: _types_pb2.Embedding
    threshold: float
    def __init__(self, probe: _Optional[_Union[_types_pb2.Embedding, _Mapping]] = ..., customer_id: _Optional[str] = ..., reference_embedding: _Optional[_Union[_types_pb2.Embedding, _Mapping]] = ..., threshold: _Optional[float] = ...) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ("score", "threshold", "match", "estimated_false_match_rate", "enrollment_id", "reference_source", "calibration_id")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FALSE_MATCH_RATE_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_ID_FIELD_NUMBER: _ClassVar[int]
    score: float
    threshold: float
    match: bool
    estimated_false_match_rate: float
    enrollment_id: str
    reference_source: _types_pb2.EnrollmentSource
    calibration_id: str
    def __init__(self, score: _Optional[float] = ..., threshold: _Optional[float] = ..., match: _Optional[bool] = ..., estimated_false_match_rate: _Optional[float] = ..., enrollment_id: _Optional[str] = ..., reference_source: _Optional[_Union[_types_pb2.EnrollmentSource, str]] = ..., calibration_id: _Optional[str] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("probe", "top_k", "min_score", "exclude_customer_id", "threshold")
    PROBE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    probe: _types_pb2.Embedding
    top_k: int
    min_score: float
    exclude_customer_id: str
    threshold: float
    def __init__(self, probe: _Optional[_Union[_types_pb2.Embedding, _Mapping]] = ..., top_k: _Optional[int] = ..., min_score: _Optional[float] = ..., exclude_customer_id: _Optional[str] = ..., threshold: _Optional[float] = ...) -> None: ...

class SearchHit(_message.Message):
    __slots__ = ("customer_id", "enrollment_id", "score")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    enrollment_id: str
    score: float
    def __init__(self, customer_id: _Optional[str] = ..., enrollment_id: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("hits", "index_kind", "gallery_size")
    HITS_FIELD_NUMBER: _ClassVar[int]
    INDEX_KIND_FIELD_NUMBER: _ClassVar[int]
    GALLERY_SIZE_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[SearchHit]
    index_kind: str
    gallery_size: int
    def __init__(self, hits: _Optional[_Iterable[_Union[SearchHit, _Mapping]]] = ..., index_kind: _Optional[str] = ..., gallery_size: _Optional[int] = ...) -> None: ...

class ListEnrollmentsRequest(_message.Message):
    __slots__ = ("customer_id", "include_retired")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RETIRED_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    include_retired: bool
    def __init__(self, customer_id: _Optional[str] = ..., include_retired: _Optional[bool] = ...) -> None: ...

class ListEnrollmentsResponse(_message.Message):
    __slots__ = ("enrollments",)
    ENROLLMENTS_FIELD_NUMBER: _ClassVar[int]
    enrollments: _containers.RepeatedCompositeFieldContainer[Enrollment]
    def __init__(self, enrollments: _Optional[_Iterable[_Union[Enrollment, _Mapping]]] = ...) -> None: ...

class RetireEnrollmentsRequest(_message.Message):
    __slots__ = ("customer_id", "reason")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    reason: str
    def __init__(self, customer_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RetireEnrollmentsResponse(_message.Message):
    __slots__ = ("retired_count",)
    RETIRED_COUNT_FIELD_NUMBER: _ClassVar[int]
    retired_count: int
    def __init__(self, retired_count: _Optional[int] = ...) -> None: ...

class ShredCustomerKeyRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class ShredCustomerKeyResponse(_message.Message):
    __slots__ = ("destroyed_key_count", "shredded_at")
    DESTROYED_KEY_COUNT_FIELD_NUMBER: _ClassVar[int]
    SHREDDED_AT_FIELD_NUMBER: _ClassVar[int]
    destroyed_key_count: int
    shredded_at: _timestamp_pb2.Timestamp
    def __init__(self, destroyed_key_count: _Optional[int] = ..., shredded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
