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

class IssueKtpChallengeRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class IssueKtpChallengeResponse(_message.Message):
    __slots__ = ("challenge",)
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    challenge: _types_pb2.FlashChallenge
    def __init__(self, challenge: _Optional[_Union[_types_pb2.FlashChallenge, _Mapping]] = ...) -> None: ...

class KtpOcrFields(_message.Message):
    __slots__ = ("nik", "full_name", "birth_place", "birth_date", "gender", "address", "rt_rw", "village", "district", "religion", "marital_status", "occupation", "nationality", "valid_until", "province", "regency", "blood_type")
    NIK_FIELD_NUMBER: _ClassVar[int]
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    BIRTH_PLACE_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    GENDER_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RT_RW_FIELD_NUMBER: _ClassVar[int]
    VILLAGE_FIELD_NUMBER: _ClassVar[int]
    DISTRICT_FIELD_NUMBER: _ClassVar[int]
    RELIGION_FIELD_NUMBER: _ClassVar[int]
    MARITAL_STATUS_FIELD_NUMBER: _ClassVar[int]
    OCCUPATION_FIELD_NUMBER: _ClassVar[int]
    NATIONALITY_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    PROVINCE_FIELD_NUMBER: _ClassVar[int]
    REGENCY_FIELD_NUMBER: _ClassVar[int]
    BLOOD_TYPE_FIELD_NUMBER: _ClassVar[int]
    nik: str
    full_name: str
    birth_place: str
    birth_date: str
    gender: str
    address: str
    rt_rw: str
    village: str
    district: str
    religion: str
    marital_status: str
    occupation: str
    nationality: str
    valid_until: str
    province: str
    regency: str
    blood_type: str
    def __init__(self, nik: _Optional[str] = ..., full_name: _Optional[str] = ..., birth_place: _Optional[str] = ..., birth_date: _Optional[str] = ..., gender: _Optional[str] = ..., address: _Optional[str] = ..., rt_rw: _Optional[str] = ..., village: _Optional[str] = ..., district: _Optional[str] = ..., religion: _Optional[str] = ..., marital_status: _Optional[str] = ..., occupation: _Optional[str] = ..., nationality: _Optional[str] = ..., valid_until: _Optional[str] = ..., province: _Optional[str] = ..., regency: _Optional[str] = ..., blood_type: _Optional[str] = ...) -> None: ...

class SubmitKtpCaptureRequest(_message.Message):
    __slots__ = ("customer_id", "challenge_id", "bundle", "ocr_fields")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    OCR_FIELDS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    challenge_id: str
    bundle: _resources_pb2.CaptureBundle
    ocr_fields: KtpOcrFields
    def __init__(self, customer_id: _Optional[str] = ..., challenge_id: _Optional[str] = ..., bundle: _Optional[_Union[_resources_pb2.CaptureBundle, _Mapping]] = ..., ocr_fields: _Optional[_Union[KtpOcrFields, _Mapping]] = ...) -> None: ...

class KtpFieldCheck(_message.Message):
    __slots__ = ("name", "ocr_confidence", "matches_submitted")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OCR_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    MATCHES_SUBMITTED_FIELD_NUMBER: _ClassVar[int]
    name: str
    ocr_confidence: float
    matches_submitted: bool
    def __init__(self, name: _Optional[str] = ..., ocr_confidence: _Optional[float] = ..., matches_submitted: _Optional[bool] = ...) -> None: ...

class SubmitKtpCaptureResponse(_message.Message):
    __slots__ = ("verification", "replayed", "field_checks", "enrollment_id", "tier")
    VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    FIELD_CHECKS_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    verification: _resources_pb2.Verification
    replayed: bool
    field_checks: _containers.RepeatedCompositeFieldContainer[KtpFieldCheck]
    enrollment_id: str
    tier: _types_pb2.KycTier
    def __init__(self, verification: _Optional[_Union[_resources_pb2.Verification, _Mapping]] = ..., replayed: _Optional[bool] = ..., field_checks: _Optional[_Iterable[_Union[KtpFieldCheck, _Mapping]]] = ..., enrollment_id: _Optional[str] = ..., tier: _Optional[_Union[_types_pb2.KycTier, str]] = ...) -> None: ...
