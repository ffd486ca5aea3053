"""Domain errors: what went wrong, in terms a caller can act on.

Domain code raises these and never imports gRPC. The error interceptor turns
them into a `google.rpc.Status` with the gRPC code and one `ErrorInfo`
(domain `identity-platform`, `reason` from `identity.common.v1.ErrorReason`
without its prefix, `metadata`). Messages and metadata must not contain
personal data: name the field, never echo its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ERROR_DOMAIN = "identity-platform"


class DomainError(Exception):
    """Base class; `code` is the gRPC status code name, `default_reason` the
    reason when the raiser names none. A subclass sets them in its header:
    `class NotFound(DomainError, code="NOT_FOUND")`; its own subclasses inherit them."""

    code = "UNKNOWN"
    default_reason = "INTERNAL"

    def __init_subclass__(cls, code: str = "", reason: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code:
            cls.code = code
        if reason:
            cls.default_reason = reason

    def __init__(
        self, message: str, reason: str | None = None, metadata: Mapping[str, object] | None = None
    ):
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason}: {self.message})"

    def rename_field(self, renamed: str) -> None:
        """Name the refused field `renamed` (the caller's spelling of what a
        downstream service called it), in the metadata and the message's lead."""
        field = self.metadata.get("field", "")
        if not field or renamed == field:
            return
        self.metadata["field"] = renamed
        if self.message.startswith(f"{field}:"):
            self.message = renamed + self.message[len(field) :]
            self.args = (self.message,)


class InvalidArgument(DomainError, code="INVALID_ARGUMENT", reason="INVALID_FIELD"): ...


class NotFound(DomainError, code="NOT_FOUND"): ...


class AlreadyExists(DomainError, code="ALREADY_EXISTS"): ...


class FailedPrecondition(DomainError, code="FAILED_PRECONDITION"): ...


class PermissionDenied(DomainError, code="PERMISSION_DENIED"): ...


class Unauthenticated(DomainError, code="UNAUTHENTICATED"): ...


class ResourceExhausted(DomainError, code="RESOURCE_EXHAUSTED"): ...


class Unavailable(DomainError, code="UNAVAILABLE", reason="DEPENDENCY_UNAVAILABLE"): ...


class DeadlineExceeded(DomainError, code="DEADLINE_EXCEEDED", reason="DEADLINE_EXCEEDED"): ...


class DataLoss(DomainError, code="DATA_LOSS"): ...


class Unimplemented(DomainError, code="UNIMPLEMENTED", reason="NOT_IMPLEMENTED"): ...


class Internal(DomainError, code="INTERNAL"): ...


class RemoteError(DomainError):
    """An error a downstream service returned, carried to our caller unchanged."""

    def __init__(
        self, code: str, message: str, reason: str, metadata: Mapping[str, object] | None = None
    ):
        super().__init__(message, reason, metadata)
        self.code = code


def invalid_field(field: str, problem: str) -> InvalidArgument:
    """An INVALID_FIELD error naming the field, never its value."""
    return InvalidArgument(f"{field}: {problem}", "INVALID_FIELD", {"field": field})


def require(condition: bool, field: str, problem: str) -> None:
    if not condition:
        raise invalid_field(field, problem)
