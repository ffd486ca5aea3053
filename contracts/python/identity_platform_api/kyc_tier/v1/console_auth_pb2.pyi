import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from identity_platform_api.common.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConsoleUser(_message.Message):
    __slots__ = ("user_id", "email", "display_name", "org_id", "roles", "passkey_count")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    PASSKEY_COUNT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    display_name: str
    org_id: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    passkey_count: int
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., display_name: _Optional[str] = ..., org_id: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., passkey_count: _Optional[int] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("token", "expires_at", "user")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_at: _timestamp_pb2.Timestamp
    user: ConsoleUser
    def __init__(self, token: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., user: _Optional[_Union[ConsoleUser, _Mapping]] = ...) -> None: ...

class LoginRequest(_message.Message):
    __slots__ = ("email", "password")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    email: str
    password: str
    def __init__(self, email: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class LoginResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class LogoutRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LogoutResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetMeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetMeResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: ConsoleUser
    def __init__(self, user: _Optional[_Union[ConsoleUser, _Mapping]] = ...) -> None: ...

class BeginPasskeyRegistrationRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BeginPasskeyRegistrationResponse(_message.Message):
    __slots__ = ("options_json",)
    OPTIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    options_json: str
    def __init__(self, options_json: _Optional[str] = ...) -> None: ...

class FinishPasskeyRegistrationRequest(_message.Message):
    __slots__ = ("credential_json", "passkey_name")
    CREDENTIAL_JSON_FIELD_NUMBER: _ClassVar[int]
    PASSKEY_NAME_FIELD_NUMBER: _ClassVar[int]
    credential_json: str
    passkey_name: str
    def __init__(self, credential_json: _Optional[str] = ..., passkey_name: _Optional[str] = ...) -> None: ...

class FinishPasskeyRegistrationResponse(_message.Message):
    __slots__ = ("passkey_id",)
    PASSKEY_ID_FIELD_NUMBER: _ClassVar[int]
    passkey_id: str
    def __init__(self, passkey_id: _Optional[str] = ...) -> None: ...

class BeginPasskeyAuthenticationRequest(_message.Message):
    __slots__ = ("email",)
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    email: str
    def __init__(self, email: _Optional[str] = ...) -> None: ...

class BeginPasskeyAuthenticationResponse(_message.Message):
    __slots__ = ("ceremony_id", "options_json")
    CEREMONY_ID_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    ceremony_id: str
    options_json: str
    def __init__(self, ceremony_id: _Optional[str] = ..., options_json: _Optional[str] = ...) -> None: ...

class FinishPasskeyAuthenticationRequest(_message.Message):
    __slots__ = ("ceremony_id", "credential_json")
    CEREMONY_ID_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_JSON_FIELD_NUMBER: _ClassVar[int]
    ceremony_id: str
    credential_json: str
    def __init__(self, ceremony_id: _Optional[str] = ..., credential_json: _Optional[str] = ...) -> None: ...

class FinishPasskeyAuthenticationResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...
