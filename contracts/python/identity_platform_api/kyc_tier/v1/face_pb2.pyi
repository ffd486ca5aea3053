import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from identity_platform_api.common.v1 import options_pb2 as _options_pb2
from identity_platform_api.common.v1 import types_pb2 as _types_pb2
from identity_platform_api.kyc_tier.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IssueFlashChallengeRequest(_message.Message):
    __slots__ = ("customer_id", "purpose")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    purpose: _types_pb2.ChallengePurpose
    def __init__(self, customer_id: _Optional[str] = ..., purpose: _Optional[_Union[_types_pb2.ChallengePurpose, str]] = ...) -> None: ...

class IssueFlashChallengeResponse(_message.Message):
    __slots__ = ("challenge",)
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    challenge: _types_pb2.FlashChallenge
    def __init__(self, challenge: _Optional[_Union[_types_pb2.FlashChallenge, _Mapping]] = ...) -> None: ...

class CheckFaceLivenessRequest(_message.Message):
    __slots__ = ("customer_id", "challenge_id", "bundle")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    challenge_id: str
    bundle: _resources_pb2.CaptureBundle
    def __init__(self, customer_id: _Optional[str] = ..., challenge_id: _Optional[str] = ..., bundle: _Optional[_Union[_resources_pb2.CaptureBundle, _Mapping]] = ...) -> None: ...

class CheckFaceLivenessResponse(_message.Message):
    __slots__ = ("verification", "liveness", "quality_reasons", "enrollment_id", "tier")
    VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    QUALITY_REASONS_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    verification: _resources_pb2.Verification
    liveness: _resources_pb2.LivenessScores
    quality_reasons: _containers.RepeatedCompositeFieldContainer[_types_pb2.Reason]
    enrollment_id: str
    tier: _types_pb2.KycTier
    def __init__(self, verification: _Optional[_Union[_resources_pb2.Verification, _Mapping]] = ..., liveness: _Optional[_Union[_resources_pb2.LivenessScores, _Mapping]] = ..., quality_reasons: _Optional[_Iterable[_Union[_types_pb2.Reason, _Mapping]]] = ..., enrollment_id: _Optional[str] = ..., tier: _Optional[_Union[_types_pb2.KycTier, str]] = ...) -> None: ...

class MatchFaceRequest(_message.Message):
    __slots__ = ("customer_id", "probe_image", "liveness_verification_id", "reference_image")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PROBE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_VERIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    probe_image: _types_pb2.Image
    liveness_verification_id: str
    reference_image: _types_pb2.Image
    def __init__(self, customer_id: _Optional[str] = ..., probe_image: _Optional[_Union[_types_pb2.Image, _Mapping]] = ..., liveness_verification_id: _Optional[str] = ..., reference_image: _Optional[_Union[_types_pb2.Image, _Mapping]] = ...) -> None: ...

class MatchFaceResponse(_message.Message):
    __slots__ = ("verification", "match", "tier")
    VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    verification: _resources_pb2.Verification
    match: _resources_pb2.MatchScores
    tier: _types_pb2.KycTier
    def __init__(self, verification: _Optional[_Union[_resources_pb2.Verification, _Mapping]] = ..., match: _Optional[_Union[_resources_pb2.MatchScores, _Mapping]] = ..., tier: _Optional[_Union[_types_pb2.KycTier, str]] = ...) -> None: ...

class ListFaceEnrollmentsRequest(_message.Message):
    __slots__ = ("customer_id", "include_retired")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RETIRED_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    include_retired: bool
    def __init__(self, customer_id: _Optional[str] = ..., include_retired: _Optional[bool] = ...) -> None: ...

class FaceEnrollment(_message.Message):
    __slots__ = ("enrollment_id", "customer_id", "source", "active", "model_id", "dimension", "verification_id", "created_at", "retired_at")
    ENROLLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    RETIRED_AT_FIELD_NUMBER: _ClassVar[int]
    enrollment_id: str
    customer_id: str
    source: _types_pb2.EnrollmentSource
    active: bool
    model_id: str
    dimension: int
    verification_id: str
    created_at: _timestamp_pb2.Timestamp
    retired_at: _timestamp_pb2.Timestamp
    def __init__(self, enrollment_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., source: _Optional[_Union[_types_pb2.EnrollmentSource, str]] = ..., active: _Optional[bool] = ..., model_id: _Optional[str] = ..., dimension: _Optional[int] = ..., verification_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., retired_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListFaceEnrollmentsResponse(_message.Message):
    __slots__ = ("enrollments",)
    ENROLLMENTS_FIELD_NUMBER: _ClassVar[int]
    enrollments: _containers.RepeatedCompositeFieldContainer[FaceEnrollment]
    def __init__(self, enrollments: _Optional[_Iterable[_Union[FaceEnrollment, _Mapping]]] = ...) -> None: ...
