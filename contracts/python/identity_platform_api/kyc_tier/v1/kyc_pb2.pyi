import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from identity_platform_api.common.v1 import types_pb2 as _types_pb2
from identity_platform_api.kyc_tier.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DukcapilVerdict(_message.Message):
    __slots__ = ("field_matches", "face_score", "reference", "verified_at")
    class FieldMatchesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    FIELD_MATCHES_FIELD_NUMBER: _ClassVar[int]
    FACE_SCORE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    field_matches: _containers.ScalarMap[str, bool]
    face_score: float
    reference: str
    verified_at: _timestamp_pb2.Timestamp
    def __init__(self, field_matches: _Optional[_Mapping[str, bool]] = ..., face_score: _Optional[float] = ..., reference: _Optional[str] = ..., verified_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SubmitDukcapilVerdictRequest(_message.Message):
    __slots__ = ("customer_id", "verdict", "signature")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    verdict: DukcapilVerdict
    signature: str
    def __init__(self, customer_id: _Optional[str] = ..., verdict: _Optional[_Union[DukcapilVerdict, _Mapping]] = ..., signature: _Optional[str] = ...) -> None: ...

class SubmitDukcapilVerdictResponse(_message.Message):
    __slots__ = ("verification", "tier")
    VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    verification: _resources_pb2.Verification
    tier: _types_pb2.KycTier
    def __init__(self, verification: _Optional[_Union[_resources_pb2.Verification, _Mapping]] = ..., tier: _Optional[_Union[_types_pb2.KycTier, str]] = ...) -> None: ...

class GetKycStatusRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class TierRequirement(_message.Message):
    __slots__ = ("name", "tier", "satisfied", "verification_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    SATISFIED_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    tier: _types_pb2.KycTier
    satisfied: bool
    verification_id: str
    def __init__(self, name: _Optional[str] = ..., tier: _Optional[_Union[_types_pb2.KycTier, str]] = ..., satisfied: _Optional[bool] = ..., verification_id: _Optional[str] = ...) -> None: ...

class GetKycStatusResponse(_message.Message):
    __slots__ = ("customer_id", "tier", "tier_updated_at", "requirements", "next_tier", "missing_for_next_tier")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    TIER_UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TIER_FIELD_NUMBER: _ClassVar[int]
    MISSING_FOR_NEXT_TIER_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    tier: _types_pb2.KycTier
    tier_updated_at: _timestamp_pb2.Timestamp
    requirements: _containers.RepeatedCompositeFieldContainer[TierRequirement]
    next_tier: _types_pb2.KycTier
    missing_for_next_tier: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_id: _Optional[str] = ..., tier: _Optional[_Union[_types_pb2.KycTier, str]] = ..., tier_updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., requirements: _Optional[_Iterable[_Union[TierRequirement, _Mapping]]] = ..., next_tier: _Optional[_Union[_types_pb2.KycTier, str]] = ..., missing_for_next_tier: _Optional[_Iterable[str]] = ...) -> None: ...

class UpgradeKycRequest(_message.Message):
    __slots__ = ("customer_id", "target_tier", "review_id", "note")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_TIER_FIELD_NUMBER: _ClassVar[int]
    REVIEW_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    target_tier: _types_pb2.KycTier
    review_id: str
    note: str
    def __init__(self, customer_id: _Optional[str] = ..., target_tier: _Optional[_Union[_types_pb2.KycTier, str]] = ..., review_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class TierEvent(_message.Message):
    __slots__ = ("event_id", "customer_id", "from_tier", "to_tier", "cause", "verification_id", "actor", "created_at")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_TIER_FIELD_NUMBER: _ClassVar[int]
    TO_TIER_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    customer_id: str
    from_tier: _types_pb2.KycTier
    to_tier: _types_pb2.KycTier
    cause: str
    verification_id: str
    actor: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, event_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., from_tier: _Optional[_Union[_types_pb2.KycTier, str]] = ..., to_tier: _Optional[_Union[_types_pb2.KycTier, str]] = ..., cause: _Optional[str] = ..., verification_id: _Optional[str] = ..., actor: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UpgradeKycResponse(_message.Message):
    __slots__ = ("tier", "event")
    TIER_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    tier: _types_pb2.KycTier
    event: TierEvent
    def __init__(self, tier: _Optional[_Union[_types_pb2.KycTier, str]] = ..., event: _Optional[_Union[TierEvent, _Mapping]] = ...) -> None: ...
