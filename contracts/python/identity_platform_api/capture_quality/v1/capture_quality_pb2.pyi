from identity_platform_api.common.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CaptureKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAPTURE_KIND_UNSPECIFIED: _ClassVar[CaptureKind]
    CAPTURE_KIND_SELFIE: _ClassVar[CaptureKind]
    CAPTURE_KIND_REFERENCE: _ClassVar[CaptureKind]

class QualityVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUALITY_VERDICT_UNSPECIFIED: _ClassVar[QualityVerdict]
    QUALITY_VERDICT_PASS: _ClassVar[QualityVerdict]
    QUALITY_VERDICT_FAIL: _ClassVar[QualityVerdict]
CAPTURE_KIND_UNSPECIFIED: CaptureKind
CAPTURE_KIND_SELFIE: CaptureKind
CAPTURE_KIND_REFERENCE: CaptureKind
QUALITY_VERDICT_UNSPECIFIED: QualityVerdict
QUALITY_VERDICT_PASS: QualityVerdict
QUALITY_VERDICT_FAIL: QualityVerdict

class QualityMeasure(_message.Message):
    __slots__ = ("name", "value", "threshold", "passed", "reason_code")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    threshold: str
    passed: bool
    reason_code: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., threshold: _Optional[str] = ..., passed: _Optional[bool] = ..., reason_code: _Optional[str] = ...) -> None: ...

class AssessFaceRequest(_message.Message):
    __slots__ = ("frames", "kind", "include_crops", "crop_frame_index")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CROPS_FIELD_NUMBER: _ClassVar[int]
    CROP_FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[_types_pb2.Image]
    kind: CaptureKind
    include_crops: bool
    crop_frame_index: int
    def __init__(self, frames: _Optional[_Iterable[_Union[_types_pb2.Image, _Mapping]]] = ..., kind: _Optional[_Union[CaptureKind, str]] = ..., include_crops: _Optional[bool] = ..., crop_frame_index: _Optional[int] = ...) -> None: ...

class FrameAssessment(_message.Message):
    __slots__ = ("frame_index", "width", "height", "faces", "measures", "verdict", "colour")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    COLOUR_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    width: int
    height: int
    faces: _containers.RepeatedCompositeFieldContainer[_types_pb2.DetectedFace]
    measures: _containers.RepeatedCompositeFieldContainer[QualityMeasure]
    verdict: QualityVerdict
    colour: _types_pb2.ColourSample
    def __init__(self, frame_index: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., faces: _Optional[_Iterable[_Union[_types_pb2.DetectedFace, _Mapping]]] = ..., measures: _Optional[_Iterable[_Union[QualityMeasure, _Mapping]]] = ..., verdict: _Optional[_Union[QualityVerdict, str]] = ..., colour: _Optional[_Union[_types_pb2.ColourSample, _Mapping]] = ...) -> None: ...

class AssessFaceResponse(_message.Message):
    __slots__ = ("frames", "best_frame_index", "verdict", "reasons", "crops", "detector_model")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    BEST_FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    CROPS_FIELD_NUMBER: _ClassVar[int]
    DETECTOR_MODEL_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[FrameAssessment]
    best_frame_index: int
    verdict: QualityVerdict
    reasons: _containers.RepeatedCompositeFieldContainer[_types_pb2.Reason]
    crops: _types_pb2.FaceCrops
    detector_model: str
    def __init__(self, frames: _Optional[_Iterable[_Union[FrameAssessment, _Mapping]]] = ..., best_frame_index: _Optional[int] = ..., verdict: _Optional[_Union[QualityVerdict, str]] = ..., reasons: _Optional[_Iterable[_Union[_types_pb2.Reason, _Mapping]]] = ..., crops: _Optional[_Union[_types_pb2.FaceCrops, _Mapping]] = ..., detector_model: _Optional[str] = ...) -> None: ...

class CheckKtpRequest(_message.Message):
    __slots__ = ("card_image", "submitted_nik", "submitted_fields", "include_portrait_crops")
    class SubmittedFieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CARD_IMAGE_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_NIK_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_PORTRAIT_CROPS_FIELD_NUMBER: _ClassVar[int]
    card_image: _types_pb2.Image
    submitted_nik: str
    submitted_fields: _containers.ScalarMap[str, str]
    include_portrait_crops: bool
    def __init__(self, card_image: _Optional[_Union[_types_pb2.Image, _Mapping]] = ..., submitted_nik: _Optional[str] = ..., submitted_fields: _Optional[_Mapping[str, str]] = ..., include_portrait_crops: _Optional[bool] = ...) -> None: ...

class KtpField(_message.Message):
    __slots__ = ("name", "value", "confidence")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    confidence: float
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., confidence: _Optional[float] = ...) -> None: ...

class NikValidation(_message.Message):
    __slots__ = ("valid", "reasons", "province_code", "province_name", "regency_code", "regency_name", "district_code", "birth_date", "gender", "regency_current_code", "district_name")
    VALID_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    PROVINCE_CODE_FIELD_NUMBER: _ClassVar[int]
    PROVINCE_NAME_FIELD_NUMBER: _ClassVar[int]
    REGENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    REGENCY_NAME_FIELD_NUMBER: _ClassVar[int]
    DISTRICT_CODE_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    GENDER_FIELD_NUMBER: _ClassVar[int]
    REGENCY_CURRENT_CODE_FIELD_NUMBER: _ClassVar[int]
    DISTRICT_NAME_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    reasons: _containers.RepeatedCompositeFieldContainer[_types_pb2.Reason]
    province_code: str
    province_name: str
    regency_code: str
    regency_name: str
    district_code: str
    birth_date: str
    gender: str
    regency_current_code: str
    district_name: str
    def __init__(self, valid: _Optional[bool] = ..., reasons: _Optional[_Iterable[_Union[_types_pb2.Reason, _Mapping]]] = ..., province_code: _Optional[str] = ..., province_name: _Optional[str] = ..., regency_code: _Optional[str] = ..., regency_name: _Optional[str] = ..., district_code: _Optional[str] = ..., birth_date: _Optional[str] = ..., gender: _Optional[str] = ..., regency_current_code: _Optional[str] = ..., district_name: _Optional[str] = ...) -> None: ...

class TamperSignal(_message.Message):
    __slots__ = ("code", "score", "decisive", "detail")
    CODE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    DECISIVE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    code: str
    score: float
    decisive: bool
    detail: str
    def __init__(self, code: _Optional[str] = ..., score: _Optional[float] = ..., decisive: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class CheckKtpResponse(_message.Message):
    __slots__ = ("card_found", "card_corners", "measures", "portrait_found", "portrait", "portrait_crops", "fields", "nik", "tamper_signals", "verdict", "reasons", "ocr_model")
    CARD_FOUND_FIELD_NUMBER: _ClassVar[int]
    CARD_CORNERS_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    PORTRAIT_FOUND_FIELD_NUMBER: _ClassVar[int]
    PORTRAIT_FIELD_NUMBER: _ClassVar[int]
    PORTRAIT_CROPS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    NIK_FIELD_NUMBER: _ClassVar[int]
    TAMPER_SIGNALS_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    OCR_MODEL_FIELD_NUMBER: _ClassVar[int]
    card_found: bool
    card_corners: _containers.RepeatedCompositeFieldContainer[_types_pb2.Point]
    measures: _containers.RepeatedCompositeFieldContainer[QualityMeasure]
    portrait_found: bool
    portrait: _types_pb2.DetectedFace
    portrait_crops: _types_pb2.FaceCrops
    fields: _containers.RepeatedCompositeFieldContainer[KtpField]
    nik: NikValidation
    tamper_signals: _containers.RepeatedCompositeFieldContainer[TamperSignal]
    verdict: QualityVerdict
    reasons: _containers.RepeatedCompositeFieldContainer[_types_pb2.Reason]
    ocr_model: str
    def __init__(self, card_found: _Optional[bool] = ..., card_corners: _Optional[_Iterable[_Union[_types_pb2.Point, _Mapping]]] = ..., measures: _Optional[_Iterable[_Union[QualityMeasure, _Mapping]]] = ..., portrait_found: _Optional[bool] = ..., portrait: _Optional[_Union[_types_pb2.DetectedFace, _Mapping]] = ..., portrait_crops: _Optional[_Union[_types_pb2.FaceCrops, _Mapping]] = ..., fields: _Optional[_Iterable[_Union[KtpField, _Mapping]]] = ..., nik: _Optional[_Union[NikValidation, _Mapping]] = ..., tamper_signals: _Optional[_Iterable[_Union[TamperSignal, _Mapping]]] = ..., verdict: _Optional[_Union[QualityVerdict, str]] = ..., reasons: _Optional[_Iterable[_Union[_types_pb2.Reason, _Mapping]]] = ..., ocr_model: _Optional[str] = ...) -> None: ...
