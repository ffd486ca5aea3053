import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from identity_platform_api.common.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IssueChallengeRequest(_message.Message):
    __slots__ = ("customer_id", "purpose")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    purpose: _types_pb2.ChallengePurpose
    def __init__(self, customer_id: _Optional[str] = ..., purpose: _Optional[_Union[_types_pb2.ChallengePurpose, str]] = ...) -> None: ...

class IssueChallengeResponse(_message.Message):
    __slots__ = ("challenge",)
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    challenge: _types_pb2.FlashChallenge
    def __init__(self, challenge: _Optional[_Union[_types_pb2.FlashChallenge, _Mapping]] = ...) -> None: ...

class RegisterDeviceRequest(_message.Message):
    __slots__ = ("device_id", "customer_id", "algorithm", "public_key", "platform")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    customer_id: str
    algorithm: _types_pb2.KeyAlgorithm
    public_key: bytes
    platform: str
    def __init__(self, device_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., algorithm: _Optional[_Union[_types_pb2.KeyAlgorithm, str]] = ..., public_key: _Optional[bytes] = ..., platform: _Optional[str] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("device_id", "customer_id", "algorithm", "key_fingerprint", "platform", "registered_at")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    customer_id: str
    algorithm: _types_pb2.KeyAlgorithm
    key_fingerprint: str
    platform: str
    registered_at: _timestamp_pb2.Timestamp
    def __init__(self, device_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., algorithm: _Optional[_Union[_types_pb2.KeyAlgorithm, str]] = ..., key_fingerprint: _Optional[str] = ..., platform: _Optional[str] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RegisterDeviceResponse(_message.Message):
    __slots__ = ("device", "created")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    device: Device
    created: bool
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class FrameEvidence(_message.Message):
    __slots__ = ("frame_index", "offset_ms", "colour", "face_found", "baseline")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    OFFSET_MS_FIELD_NUMBER: _ClassVar[int]
    COLOUR_FIELD_NUMBER: _ClassVar[int]
    FACE_FOUND_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    offset_ms: int
    colour: _types_pb2.ColourSample
    face_found: bool
    baseline: bool
    def __init__(self, frame_index: _Optional[int] = ..., offset_ms: _Optional[int] = ..., colour: _Optional[_Union[_types_pb2.ColourSample, _Mapping]] = ..., face_found: _Optional[bool] = ..., baseline: _Optional[bool] = ...) -> None: ...

class CheckLivenessRequest(_message.Message):
    __slots__ = ("customer_id", "purpose", "challenge_id", "attestation", "computed_bundle_sha256", "pad_crops", "frames")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_BUNDLE_SHA256_FIELD_NUMBER: _ClassVar[int]
    PAD_CROPS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    purpose: _types_pb2.ChallengePurpose
    challenge_id: str
    attestation: _types_pb2.BundleAttestation
    computed_bundle_sha256: str
    pad_crops: _containers.RepeatedCompositeFieldContainer[_types_pb2.PadCrop]
    frames: _containers.RepeatedCompositeFieldContainer[FrameEvidence]
    def __init__(self, customer_id: _Optional[str] = ..., purpose: _Optional[_Union[_types_pb2.ChallengePurpose, str]] = ..., challenge_id: _Optional[str] = ..., attestation: _Optional[_Union[_types_pb2.BundleAttestation, _Mapping]] = ..., computed_bundle_sha256: _Optional[str] = ..., pad_crops: _Optional[_Iterable[_Union[_types_pb2.PadCrop, _Mapping]]] = ..., frames: _Optional[_Iterable[_Union[FrameEvidence, _Mapping]]] = ...) -> None: ...

class PadModelScore(_message.Message):
    __slots__ = ("model_id", "crop_scale", "live_score")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    CROP_SCALE_FIELD_NUMBER: _ClassVar[int]
    LIVE_SCORE_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    crop_scale: float
    live_score: float
    def __init__(self, model_id: _Optional[str] = ..., crop_scale: _Optional[float] = ..., live_score: _Optional[float] = ...) -> None: ...

class CheckLivenessResponse(_message.Message):
    __slots__ = ("live", "pad_score", "pad_models", "flash_score", "reasons", "decision_basis", "device_id")
    LIVE_FIELD_NUMBER: _ClassVar[int]
    PAD_SCORE_FIELD_NUMBER: _ClassVar[int]
    PAD_MODELS_FIELD_NUMBER: _ClassVar[int]
    FLASH_SCORE_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    DECISION_BASIS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    live: bool
    pad_score: float
    pad_models: _containers.RepeatedCompositeFieldContainer[PadModelScore]
    flash_score: float
    reasons: _containers.RepeatedCompositeFieldContainer[_types_pb2.Reason]
    decision_basis: str
    device_id: str
    def __init__(self, live: _Optional[bool] = ..., pad_score: _Optional[float] = ..., pad_models: _Optional[_Iterable[_Union[PadModelScore, _Mapping]]] = ..., flash_score: _Optional[float] = ..., reasons: _Optional[_Iterable[_Union[_types_pb2.Reason, _Mapping]]] = ..., decision_basis: _Optional[str] = ..., device_id: _Optional[str] = ...) -> None: ...
