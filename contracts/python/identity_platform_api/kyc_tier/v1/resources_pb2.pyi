import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from identity_platform_api.common.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CustomerStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CUSTOMER_STATUS_UNSPECIFIED: _ClassVar[CustomerStatus]
    CUSTOMER_STATUS_ACTIVE: _ClassVar[CustomerStatus]
    CUSTOMER_STATUS_ERASED: _ClassVar[CustomerStatus]

class VerificationKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERIFICATION_KIND_UNSPECIFIED: _ClassVar[VerificationKind]
    VERIFICATION_KIND_NIK_FORMAT: _ClassVar[VerificationKind]
    VERIFICATION_KIND_KTP_CAPTURE: _ClassVar[VerificationKind]
    VERIFICATION_KIND_FACE_LIVENESS: _ClassVar[VerificationKind]
    VERIFICATION_KIND_FACE_MATCH: _ClassVar[VerificationKind]
    VERIFICATION_KIND_DUKCAPIL_VERDICT: _ClassVar[VerificationKind]
    VERIFICATION_KIND_STEP_UP: _ClassVar[VerificationKind]
    VERIFICATION_KIND_MANUAL_REVIEW: _ClassVar[VerificationKind]

class VerificationOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERIFICATION_OUTCOME_UNSPECIFIED: _ClassVar[VerificationOutcome]
    VERIFICATION_OUTCOME_PASSED: _ClassVar[VerificationOutcome]
    VERIFICATION_OUTCOME_FAILED: _ClassVar[VerificationOutcome]
    VERIFICATION_OUTCOME_NEEDS_REVIEW: _ClassVar[VerificationOutcome]
CUSTOMER_STATUS_UNSPECIFIED: CustomerStatus
CUSTOMER_STATUS_ACTIVE: CustomerStatus
CUSTOMER_STATUS_ERASED: CustomerStatus
VERIFICATION_KIND_UNSPECIFIED: VerificationKind
VERIFICATION_KIND_NIK_FORMAT: VerificationKind
VERIFICATION_KIND_KTP_CAPTURE: VerificationKind
VERIFICATION_KIND_FACE_LIVENESS: VerificationKind
VERIFICATION_KIND_FACE_MATCH: VerificationKind
VERIFICATION_KIND_DUKCAPIL_VERDICT: VerificationKind
VERIFICATION_KIND_STEP_UP: VerificationKind
VERIFICATION_KIND_MANUAL_REVIEW: VerificationKind
VERIFICATION_OUTCOME_UNSPECIFIED: VerificationOutcome
VERIFICATION_OUTCOME_PASSED: VerificationOutcome
VERIFICATION_OUTCOME_FAILED: VerificationOutcome
VERIFICATION_OUTCOME_NEEDS_REVIEW: VerificationOutcome

class Customer(_message.Message):
    __slots__ = ("customer_id", "external_id", "full_name", "nik_masked", "email", "phone", "tier", "status", "created_at", "updated_at", "tier_updated_at")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    NIK_MASKED_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    TIER_UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    external_id: str
    full_name: str
    nik_masked: str
    email: str
    phone: str
    tier: _types_pb2.KycTier
    status: CustomerStatus
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    tier_updated_at: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., external_id: _Optional[str] = ..., full_name: _Optional[str] = ..., nik_masked: _Optional[str] = ..., email: _Optional[str] = ..., phone: _Optional[str] = ..., tier: _Optional[_Union[_types_pb2.KycTier, str]] = ..., status: _Optional[_Union[CustomerStatus, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tier_updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Verification(_message.Message):
    __slots__ = ("verification_id", "customer_id", "kind", "outcome", "reasons", "scores", "models", "input_hashes", "created_at", "request_id")
    class ScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ModelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class InputHashesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VERIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    INPUT_HASHES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    verification_id: str
    customer_id: str
    kind: VerificationKind
    outcome: VerificationOutcome
    reasons: _containers.RepeatedCompositeFieldContainer[_types_pb2.Reason]
    scores: _containers.ScalarMap[str, float]
    models: _containers.ScalarMap[str, str]
    input_hashes: _containers.ScalarMap[str, str]
    created_at: _timestamp_pb2.Timestamp
    request_id: str
    def __init__(self, verification_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., kind: _Optional[_Union[VerificationKind, str]] = ..., outcome: _Optional[_Union[VerificationOutcome, str]] = ..., reasons: _Optional[_Iterable[_Union[_types_pb2.Reason, _Mapping]]] = ..., scores: _Optional[_Mapping[str, float]] = ..., models: _Optional[_Mapping[str, str]] = ..., input_hashes: _Optional[_Mapping[str, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CapturedFrame(_message.Message):
    __slots__ = ("image", "offset_ms", "baseline")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_MS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    image: _types_pb2.Image
    offset_ms: int
    baseline: bool
    def __init__(self, image: _Optional[_Union[_types_pb2.Image, _Mapping]] = ..., offset_ms: _Optional[int] = ..., baseline: _Optional[bool] = ...) -> None: ...

class SensorReading(_message.Message):
    __slots__ = ("sensor", "offset_ms", "x", "y", "z")
    SENSOR_FIELD_NUMBER: _ClassVar[int]
    OFFSET_MS_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    sensor: str
    offset_ms: int
    x: float
    y: float
    z: float
    def __init__(self, sensor: _Optional[str] = ..., offset_ms: _Optional[int] = ..., x: _Optional[float] = ..., y: _Optional[float] = ..., z: _Optional[float] = ...) -> None: ...

class SensorData(_message.Message):
    __slots__ = ("readings", "ambient_lux", "screen_brightness")
    READINGS_FIELD_NUMBER: _ClassVar[int]
    AMBIENT_LUX_FIELD_NUMBER: _ClassVar[int]
    SCREEN_BRIGHTNESS_FIELD_NUMBER: _ClassVar[int]
    readings: _containers.RepeatedCompositeFieldContainer[SensorReading]
    ambient_lux: float
    screen_brightness: float
    def __init__(self, readings: _Optional[_Iterable[_Union[SensorReading, _Mapping]]] = ..., ambient_lux: _Optional[float] = ..., screen_brightness: _Optional[float] = ...) -> None: ...

class CaptureBundle(_message.Message):
    __slots__ = ("frames", "sensors", "attestation")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    SENSORS_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[CapturedFrame]
    sensors: SensorData
    attestation: _types_pb2.BundleAttestation
    def __init__(self, frames: _Optional[_Iterable[_Union[CapturedFrame, _Mapping]]] = ..., sensors: _Optional[_Union[SensorData, _Mapping]] = ..., attestation: _Optional[_Union[_types_pb2.BundleAttestation, _Mapping]] = ...) -> None: ...

class MatchScores(_message.Message):
    __slots__ = ("score", "threshold", "match", "estimated_false_match_rate")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FALSE_MATCH_RATE_FIELD_NUMBER: _ClassVar[int]
    score: float
    threshold: float
    match: bool
    estimated_false_match_rate: float
    def __init__(self, score: _Optional[float] = ..., threshold: _Optional[float] = ..., match: _Optional[bool] = ..., estimated_false_match_rate: _Optional[float] = ...) -> None: ...

class LivenessScores(_message.Message):
    __slots__ = ("live", "pad_score", "flash_score", "decision_basis")
    LIVE_FIELD_NUMBER: _ClassVar[int]
    PAD_SCORE_FIELD_NUMBER: _ClassVar[int]
    FLASH_SCORE_FIELD_NUMBER: _ClassVar[int]
    DECISION_BASIS_FIELD_NUMBER: _ClassVar[int]
    live: bool
    pad_score: float
    flash_score: float
    decision_basis: str
    def __init__(self, live: _Optional[bool] = ..., pad_score: _Optional[float] = ..., flash_score: _Optional[float] = ..., decision_basis: _Optional[str] = ...) -> None: ...
