"""gRPC status -> HTTP error response.

Every error the gateway returns has the same JSON shape:

    {"error": {"code": 404, "status": "NOT_FOUND", "reason": "CUSTOMER_NOT_FOUND",
               "domain": "identity-platform", "message": "...",
               "metadata": {...}, "requestId": "..."}}

`code` is the HTTP status, `status` the gRPC code name, `reason` the
`ErrorInfo.reason` (identity.common.v1.ErrorReason without its prefix).
Codes follow Google's standard mapping (google/rpc/code.proto), with
refinements by reason: PAYLOAD_TOO_LARGE 413, UNSUPPORTED_MEDIA_TYPE and
UNSUPPORTED_CONTENT_ENCODING 415, METHOD_NOT_ALLOWED 405 and
REQUEST_BODY_TIMEOUT 408 (the gateway's own), IMAGE_BUDGET_EXCEEDED 413
(capture-quality's INVALID_ARGUMENT for frames over a request's pixel budget),
LEGAL_HOLD 409 (an erasure refused by a legal hold on the customer),
PORTRAIT_MISMATCH 409 (a Dukcapil portrait that is not the customer's
verified face) and IDEMPOTENCY_KEY_ERASED 410 (a retry whose first request
was about a customer since erased).

FAILED_PRECONDITION maps to 400, as in Google's mapping: HTTP 412 is about
the request's own conditional headers (If-Match, ...), which this API does not
use; clients tell preconditions apart by `status` and `reason`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import grpc
from google.rpc import code_pb2

from identity_runtime.errors import ERROR_DOMAIN, DomainError
from identity_runtime.logs import get_logger, scrub_text
from identity_runtime.status import (
    ORIGIN_KEY,
    error_info,
    scrub_addresses,
    status_from_rpc_error,
)

log = get_logger("identity.gateway.errors")

HTTP_STATUS_BY_CODE: Mapping[str, int] = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
}

# Reasons whose HTTP status is more precise than their gRPC code's.
HTTP_STATUS_BY_REASON: Mapping[str, int] = {
    "PAYLOAD_TOO_LARGE": 413,
    "IMAGE_BUDGET_EXCEEDED": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "UNSUPPORTED_CONTENT_ENCODING": 415,
    "METHOD_NOT_ALLOWED": 405,
    # The client did not send its body in time: its fault, not a gateway timeout.
    "REQUEST_BODY_TIMEOUT": 408,
    # A customer under a legal hold cannot be erased: a conflict with the
    # resource's state, not a malformed request.
    "LEGAL_HOLD": 409,
    # A Dukcapil portrait of another face than the customer's verified one:
    # it conflicts with the reference they hold, the request is well formed.
    "PORTRAIT_MISMATCH": 409,
    # An Idempotency-Key whose first request was about a customer since
    # erased: what it answered is gone with their personal data.
    "IDEMPOTENCY_KEY_ERASED": 410,
    # A customer with the most signing devices allowed: a conflict with what
    # they have registered, not a malformed request nor a rate to wait out.
    "DEVICE_LIMIT_REACHED": 409,
}

# What the caller is told when a failure carries no ErrorInfo of ours (a
# transport error, a crash outside the error interceptor): the raw text may
# name internal addresses or exceptions.
_GENERIC_MESSAGES: Mapping[str, str] = {
    "UNAVAILABLE": "the service that answers this route is unavailable; retry later",
    "DEADLINE_EXCEEDED": "the request did not finish within its deadline",
    "INTERNAL": "internal error; quote the request id when reporting it",
    "UNKNOWN": "internal error; quote the request id when reporting it",
    "DATA_LOSS": "internal error; quote the request id when reporting it",
    "CANCELLED": "the request was cancelled",
    "RESOURCE_EXHAUSTED": "a message exceeded the configured size limit",
    "UNIMPLEMENTED": "this route is not implemented by its service",
}
# ErrorInfo metadata that stays inside the mesh.
_INTERNAL_METADATA = frozenset({"request_id", ORIGIN_KEY})
_REASON_FOR_BARE_CODE: Mapping[str, str] = {
    "UNAVAILABLE": "DEPENDENCY_UNAVAILABLE",
    "DEADLINE_EXCEEDED": "DEADLINE_EXCEEDED",
    "UNIMPLEMENTED": "NOT_IMPLEMENTED",
    "RESOURCE_EXHAUSTED": "PAYLOAD_TOO_LARGE",
    "CANCELLED": "DEADLINE_EXCEEDED",
}


class GatewayError(DomainError):
    """A failure the gateway answers itself (bad request shape, auth, limits)."""

    def __init__(
        self,
        code: str,
        reason: str,
        message: str,
        metadata: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message, reason, metadata)
        self.code = code
        self.headers = dict(headers or {})


def malformed(message: str, field: str = "") -> GatewayError:
    return GatewayError(
        "INVALID_ARGUMENT", "MALFORMED_REQUEST", message, {"field": field} if field else None
    )


# How much of a name the client chose (an unknown key, a map key) an error
# echoes: enough to spot a typo, not a megabyte back.
MAX_SHOWN_NAME = 64


def shown_name(name: str) -> str:
    """A client-chosen name as an error may echo it: at most MAX_SHOWN_NAME
    characters, control (and other unprintable) characters as "?", and what
    the log scrubbers mask (a NIK used as a key) masked."""
    clipped = name[:MAX_SHOWN_NAME]
    shown = scrub_text("".join(c if c.isprintable() else "?" for c in clipped))
    return shown + "..." if len(name) > MAX_SHOWN_NAME else shown


def invalid_field(field: str, problem: str) -> GatewayError:
    return GatewayError(
        "INVALID_ARGUMENT", "INVALID_FIELD", f"{field}: {problem}", {"field": field}
    )


def route_not_found() -> GatewayError:
    return GatewayError(
        "NOT_FOUND", "ROUTE_NOT_FOUND", "no route matches this path; see /api/openapi.json"
    )


def method_not_allowed(allowed: list[str]) -> GatewayError:
    allow = ", ".join(allowed)
    return GatewayError(
        "UNIMPLEMENTED",
        "METHOD_NOT_ALLOWED",
        f"this path accepts {allow}",
        {"allow": allow},
        headers={"Allow": allow},
    )


def payload_too_large(limit: int) -> GatewayError:
    return GatewayError(
        "RESOURCE_EXHAUSTED",
        "PAYLOAD_TOO_LARGE",
        f"the request body exceeds the limit of {limit} bytes",
        {"limit_bytes": limit},
    )


def unsupported_media_type(expected: str = "application/json") -> GatewayError:
    return GatewayError(
        "INVALID_ARGUMENT",
        "UNSUPPORTED_MEDIA_TYPE",
        f"send the request body as {expected} (UTF-8)",
        {"expected": expected},
    )


def unsupported_content_encoding() -> GatewayError:
    """415 for a body the gateway would not decode (RFC 9110 section 8.4.1),
    with the codings it does take (RFC 7694: `Accept-Encoding`)."""
    return GatewayError(
        "INVALID_ARGUMENT",
        "UNSUPPORTED_CONTENT_ENCODING",
        "send the request body without a Content-Encoding (or with `identity`)",
        {"accepted": "identity"},
        headers={"Accept-Encoding": "identity"},
    )


def request_body_timeout(timeout_seconds: float, disconnected: bool = False) -> GatewayError:
    """408 for a body that did not arrive in time, or not at all (`disconnected`:
    the client closed the connection first); the connection is closed (RFC
    9110 section 15.5.9), since the rest of the body may still come."""
    how = (
        "the client closed the connection before"
        if disconnected
        else f"not within the body-read timeout of {timeout_seconds:g} s and the request's deadline"
    )
    return GatewayError(
        "DEADLINE_EXCEEDED",
        "REQUEST_BODY_TIMEOUT",
        f"the request body did not all arrive ({how}); send it again",
        {"timeout_seconds": f"{timeout_seconds:g}"},
        headers={"Connection": "close"},
    )


def rate_limited(limit: str, retry_after: float) -> GatewayError:
    seconds = max(1, math.ceil(retry_after))
    return GatewayError(
        "RESOURCE_EXHAUSTED",
        "RATE_LIMITED",
        f"rate limit of {limit} reached; retry after {seconds}s",
        {"retry_after_seconds": seconds, "limit": limit},
        headers={"Retry-After": str(seconds)},
    )


# A service refusing the gateway's own caller token or its right to call:
# every call carries the gateway's credential, never the client's, so this is
# the mesh's configuration (trusted keys, the allowed-callers table) failing.
_MESH_REFUSALS = frozenset({"CALLER_UNAUTHENTICATED", "CALLER_NOT_ALLOWED"})


def from_rpc_error(exc: grpc.RpcError, service: str = "") -> DomainError:
    """A failed backend call as a DomainError, keeping its code and reason;
    the raw text of failures without our ErrorInfo is not passed on. A
    service refusing the gateway itself is 503 DEPENDENCY_UNAVAILABLE, not a
    401 or 403 that would tell the client its good credential was bad."""
    status = status_from_rpc_error(exc)
    code = code_pb2.Code.Name(status.code) if status.code in code_pb2.Code.values() else "UNKNOWN"
    info = error_info(status)
    if info is not None and info.domain == ERROR_DOMAIN and info.reason in _MESH_REFUSALS:
        log.error(
            "a service refused the gateway's mesh credentials", service=service, reason=info.reason
        )
        error = DomainError(
            "the service refused the gateway's own credentials; retry later",
            "DEPENDENCY_UNAVAILABLE",
            {"service": service} if service else {},
        )
        error.code = "UNAVAILABLE"
        return error
    if info is not None and info.domain == ERROR_DOMAIN:
        # The origin is for the mesh's circuit breakers, not for partners.
        metadata = {k: v for k, v in info.metadata.items() if k not in _INTERNAL_METADATA}
        error = DomainError(scrub_addresses(status.message), info.reason, metadata)
    else:
        reason = _REASON_FOR_BARE_CODE.get(code, "INTERNAL")
        metadata = (
            {"service": service} if service and code in ("UNAVAILABLE", "DEADLINE_EXCEEDED") else {}
        )
        error = DomainError(_GENERIC_MESSAGES.get(code, "the service failed"), reason, metadata)
    error.code = "INTERNAL" if code == "UNKNOWN" else code
    return error


def http_status(error: DomainError) -> int:
    if error.reason in HTTP_STATUS_BY_REASON:
        return HTTP_STATUS_BY_REASON[error.reason]
    return HTTP_STATUS_BY_CODE.get(error.code, 500)


# Retry-After of a 503 whose error gives no hint of its own: about the time
# a gateway's circuit breaker stays open before its next trial call.
UNAVAILABLE_RETRY_AFTER_SECONDS = 5


def response_headers(error: DomainError) -> dict[str, str]:
    headers = dict(getattr(error, "headers", {}) or {})
    status = http_status(error)
    if status in (429, 503) and "Retry-After" not in headers:
        # A backend's RESOURCE_EXHAUSTED or UNAVAILABLE (an open breaker says
        # when it lets the next call through): honour its hint, else a default.
        default = "1" if status == 429 else str(UNAVAILABLE_RETRY_AFTER_SECONDS)
        seconds = error.metadata.get("retry_after_seconds", default)
        headers["Retry-After"] = seconds if seconds.isdigit() else default
    return headers


def error_body(error: DomainError, request_id: str) -> bytes:
    body = {
        "error": {
            "code": http_status(error),
            "status": error.code,
            "reason": error.reason,
            "domain": ERROR_DOMAIN,
            "message": error.message,
            "metadata": dict(error.metadata),
            "requestId": request_id,
        }
    }
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate got into the error: still the JSON error, with
        # everything outside ASCII as \u escapes.
        return json.dumps(body, separators=(",", ":")).encode()
