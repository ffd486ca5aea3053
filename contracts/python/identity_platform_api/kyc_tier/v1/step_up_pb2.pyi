from google.api import annotations_pb2 as _annotations_pb2
from identity_platform_api.common.v1 import options_pb2 as _options_pb2
from identity_platform_api.common.v1 import types_pb2 as _types_pb2
from identity_platform_api.kyc_tier.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StepUpRequest(_message.Message):
    __slots__ = ("customer_id", "challenge_id", "bundle", "action", "reference_image")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    challenge_id: str
    bundle: _resources_pb2.CaptureBundle
    action: str
    reference_image: _types_pb2.Image
    def __init__(self, customer_id: _Optional[str] = ..., challenge_id: _Optional[str] = ..., bundle: _Optional[_Union[_resources_pb2.CaptureBundle, _Mapping]] = ..., action: _Optional[str] = ..., reference_image: _Optional[_Union[_types_pb2.Image, _Mapping]] = ...) -> None: ...

class StepUpScores(_message.Message):
    __slots__ = ("liveness", "match")
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    liveness: _resources_pb2.LivenessScores
    match: _resources_pb2.MatchScores
    def __init__(self, liveness: _Optional[_Union[_resources_pb2.LivenessScores, _Mapping]] = ..., match: _Optional[_Union[_resources_pb2.MatchScores, _Mapping]] = ...) -> None: ...

class StepUpResponse(_message.Message):
    __slots__ = ("allow", "reasons", "verification_id", "scores")
    ALLOW_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    allow: bool
    reasons: _containers.RepeatedCompositeFieldContainer[_types_pb2.Reason]
    verification_id: str
    scores: StepUpScores
    def __init__(self, allow: _Optional[bool] = ..., reasons: _Optional[_Iterable[_Union[_types_pb2.Reason, _Mapping]]] = ..., verification_id: _Optional[str] = ..., scores: _Optional[_Union[StepUpScores, _Mapping]] = ...) -> None: ...
