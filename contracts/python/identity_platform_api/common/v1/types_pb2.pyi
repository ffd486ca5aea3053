import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PixelFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PIXEL_FORMAT_UNSPECIFIED: _ClassVar[PixelFormat]
    PIXEL_FORMAT_BGR8: _ClassVar[PixelFormat]
    PIXEL_FORMAT_GRAY8: _ClassVar[PixelFormat]

class KycTier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KYC_TIER_UNSPECIFIED: _ClassVar[KycTier]
    KYC_TIER_NONE: _ClassVar[KycTier]
    KYC_TIER_BASIC: _ClassVar[KycTier]
    KYC_TIER_STANDARD: _ClassVar[KycTier]
    KYC_TIER_PREMIUM: _ClassVar[KycTier]

class EnrollmentSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENROLLMENT_SOURCE_UNSPECIFIED: _ClassVar[EnrollmentSource]
    ENROLLMENT_SOURCE_DUKCAPIL: _ClassVar[EnrollmentSource]
    ENROLLMENT_SOURCE_KTP_EXTRACT: _ClassVar[EnrollmentSource]
    ENROLLMENT_SOURCE_ONBOARDING_SELFIE: _ClassVar[EnrollmentSource]
    ENROLLMENT_SOURCE_STEP_UP_PROMOTION: _ClassVar[EnrollmentSource]

class ChallengePurpose(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHALLENGE_PURPOSE_UNSPECIFIED: _ClassVar[ChallengePurpose]
    CHALLENGE_PURPOSE_KTP_CAPTURE: _ClassVar[ChallengePurpose]
    CHALLENGE_PURPOSE_FACE_LIVENESS: _ClassVar[ChallengePurpose]
    CHALLENGE_PURPOSE_STEP_UP: _ClassVar[ChallengePurpose]

class KeyAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_ALGORITHM_UNSPECIFIED: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_ECDSA_P256_SHA256: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_ED25519: _ClassVar[KeyAlgorithm]
PIXEL_FORMAT_UNSPECIFIED: PixelFormat
PIXEL_FORMAT_BGR8: PixelFormat
PIXEL_FORMAT_GRAY8: PixelFormat
KYC_TIER_UNSPECIFIED: KycTier
KYC_TIER_NONE: KycTier
KYC_TIER_BASIC: KycTier
KYC_TIER_STANDARD: KycTier
KYC_TIER_PREMIUM: KycTier
ENROLLMENT_SOURCE_UNSPECIFIED: EnrollmentSource
ENROLLMENT_SOURCE_DUKCAPIL: EnrollmentSource
ENROLLMENT_SOURCE_KTP_EXTRACT: EnrollmentSource
ENROLLMENT_SOURCE_ONBOARDING_SELFIE: EnrollmentSource
ENROLLMENT_SOURCE_STEP_UP_PROMOTION: EnrollmentSource
CHALLENGE_PURPOSE_UNSPECIFIED: ChallengePurpose
CHALLENGE_PURPOSE_KTP_CAPTURE: ChallengePurpose
CHALLENGE_PURPOSE_FACE_LIVENESS: ChallengePurpose
CHALLENGE_PURPOSE_STEP_UP: ChallengePurpose
KEY_ALGORITHM_UNSPECIFIED: KeyAlgorithm
KEY_ALGORITHM_ECDSA_P256_SHA256: KeyAlgorithm
KEY_ALGORITHM_ED25519: KeyAlgorithm

class Image(_message.Message):
    __slots__ = ("data", "media_type")
    DATA_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    media_type: str
    def __init__(self, data: _Optional[bytes] = ..., media_type: _Optional[str] = ...) -> None: ...

class RawImage(_message.Message):
    __slots__ = ("width", "height", "format", "pixels")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    PIXELS_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    format: PixelFormat
    pixels: bytes
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., format: _Optional[_Union[PixelFormat, str]] = ..., pixels: _Optional[bytes] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class BoundingBox(_message.Message):
    __slots__ = ("x", "y", "width", "height")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    width: float
    height: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., width: _Optional[float] = ..., height: _Optional[float] = ...) -> None: ...

class DetectedFace(_message.Message):
    __slots__ = ("box", "landmarks", "confidence")
    BOX_FIELD_NUMBER: _ClassVar[int]
    LANDMARKS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    box: BoundingBox
    landmarks: _containers.RepeatedCompositeFieldContainer[Point]
    confidence: float
    def __init__(self, box: _Optional[_Union[BoundingBox, _Mapping]] = ..., landmarks: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., confidence: _Optional[float] = ...) -> None: ...

class AlignedFace(_message.Message):
    __slots__ = ("image", "alignment")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ALIGNMENT_FIELD_NUMBER: _ClassVar[int]
    image: RawImage
    alignment: str
    def __init__(self, image: _Optional[_Union[RawImage, _Mapping]] = ..., alignment: _Optional[str] = ...) -> None: ...

class PadCrop(_message.Message):
    __slots__ = ("scale", "image")
    SCALE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    scale: float
    image: RawImage
    def __init__(self, scale: _Optional[float] = ..., image: _Optional[_Union[RawImage, _Mapping]] = ...) -> None: ...

class FaceCrops(_message.Message):
    __slots__ = ("aligned", "pad_crops")
    ALIGNED_FIELD_NUMBER: _ClassVar[int]
    PAD_CROPS_FIELD_NUMBER: _ClassVar[int]
    aligned: AlignedFace
    pad_crops: _containers.RepeatedCompositeFieldContainer[PadCrop]
    def __init__(self, aligned: _Optional[_Union[AlignedFace, _Mapping]] = ..., pad_crops: _Optional[_Iterable[_Union[PadCrop, _Mapping]]] = ...) -> None: ...

class ColourSample(_message.Message):
    __slots__ = ("face_b", "face_g", "face_r", "background_b", "background_g", "background_r")
    FACE_B_FIELD_NUMBER: _ClassVar[int]
    FACE_G_FIELD_NUMBER: _ClassVar[int]
    FACE_R_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_B_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_G_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_R_FIELD_NUMBER: _ClassVar[int]
    face_b: float
    face_g: float
    face_r: float
    background_b: float
    background_g: float
    background_r: float
    def __init__(self, face_b: _Optional[float] = ..., face_g: _Optional[float] = ..., face_r: _Optional[float] = ..., background_b: _Optional[float] = ..., background_g: _Optional[float] = ..., background_r: _Optional[float] = ...) -> None: ...

class FlashColour(_message.Message):
    __slots__ = ("hex",)
    HEX_FIELD_NUMBER: _ClassVar[int]
    hex: str
    def __init__(self, hex: _Optional[str] = ...) -> None: ...

class EmbeddingContract(_message.Message):
    __slots__ = ("model_id", "model_version", "dimension")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    model_version: str
    dimension: int
    def __init__(self, model_id: _Optional[str] = ..., model_version: _Optional[str] = ..., dimension: _Optional[int] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("contract", "values")
    CONTRACT_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    contract: EmbeddingContract
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, contract: _Optional[_Union[EmbeddingContract, _Mapping]] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class Reason(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class FlashChallenge(_message.Message):
    __slots__ = ("challenge_id", "purpose", "sequence", "flash_duration_ms", "issued_at", "expires_at")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FLASH_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    purpose: ChallengePurpose
    sequence: _containers.RepeatedCompositeFieldContainer[FlashColour]
    flash_duration_ms: int
    issued_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, challenge_id: _Optional[str] = ..., purpose: _Optional[_Union[ChallengePurpose, str]] = ..., sequence: _Optional[_Iterable[_Union[FlashColour, _Mapping]]] = ..., flash_duration_ms: _Optional[int] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BundleAttestation(_message.Message):
    __slots__ = ("device_id", "nonce", "bundle_sha256", "signature", "captured_at")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_SHA256_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    nonce: str
    bundle_sha256: str
    signature: bytes
    captured_at: _timestamp_pb2.Timestamp
    def __init__(self, device_id: _Optional[str] = ..., nonce: _Optional[str] = ..., bundle_sha256: _Optional[str] = ..., signature: _Optional[bytes] = ..., captured_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
