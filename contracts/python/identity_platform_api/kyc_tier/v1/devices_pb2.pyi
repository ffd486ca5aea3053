import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from identity_platform_api.common.v1 import types_pb2 as _types_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegisterDeviceRequest(_message.Message):
    __slots__ = ("customer_id", "device_id", "algorithm", "public_key_pem", "platform")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_PEM_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    device_id: str
    algorithm: _types_pb2.KeyAlgorithm
    public_key_pem: str
    platform: str
    def __init__(self, customer_id: _Optional[str] = ..., device_id: _Optional[str] = ..., algorithm: _Optional[_Union[_types_pb2.KeyAlgorithm, str]] = ..., public_key_pem: _Optional[str] = ..., platform: _Optional[str] = ...) -> None: ...

class RegisterDeviceResponse(_message.Message):
    __slots__ = ("device_id", "customer_id", "key_fingerprint", "registered_at", "created")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    customer_id: str
    key_fingerprint: str
    registered_at: _timestamp_pb2.Timestamp
    created: bool
    def __init__(self, device_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., key_fingerprint: _Optional[str] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...
