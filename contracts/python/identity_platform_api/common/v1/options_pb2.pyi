from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Scope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCOPE_UNSPECIFIED: _ClassVar[Scope]
    SCOPE_PUBLIC: _ClassVar[Scope]
    SCOPE_INTERNAL: _ClassVar[Scope]
    SCOPE_ANONYMOUS: _ClassVar[Scope]
SCOPE_UNSPECIFIED: Scope
SCOPE_PUBLIC: Scope
SCOPE_INTERNAL: Scope
SCOPE_ANONYMOUS: Scope
ACCESS_FIELD_NUMBER: _ClassVar[int]
access: _descriptor.FieldDescriptor
RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
rate_limit: _descriptor.FieldDescriptor

class AccessPolicy(_message.Message):
    __slots__ = ("scope",)
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    scope: Scope
    def __init__(self, scope: _Optional[_Union[Scope, str]] = ...) -> None: ...

class RateLimit(_message.Message):
    __slots__ = ("requests", "per_seconds", "per")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    PER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PER_FIELD_NUMBER: _ClassVar[int]
    requests: int
    per_seconds: int
    per: str
    def __init__(self, requests: _Optional[int] = ..., per_seconds: _Optional[int] = ..., per: _Optional[str] = ...) -> None: ...
