"""The errors of each operation in the OpenAPI document.

Each RPC declares the statuses and reasons of its own
(`option (identity.common.v1.errors)`, protos/identity/common/v1/options.proto);
every operation adds those any call can meet at the gateway: a malformed
request or a field the validation layer refuses (400), a missing or bad key
(401; a bad one on any route) or scope (403) on a keyed route, a body too
large (413), not JSON or compressed (415) or too slow to arrive (408) on a
route with a body, the rate limit (429) on a limited route, a console session
without the admin role on a route for console admins (403 ADMIN_REQUIRED), an
SDK session token's refusals (401 on any route that reads a credential,
403 on the routes it may not call and, on those it may, for another
customer or origin), an unreachable service (503), the deadline (504) and an unexpected failure
(500). So each operation lists exactly the HTTP statuses it can answer, each
with its reasons (in the description and in `x-identity-reasons`), and no
`default` response. `reason` itself is an open string: its known values are
documented, and a client must accept one it does not know (a newer server
may add reasons; the status still tells the class of failure).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf.descriptor import MethodDescriptor
from google.rpc import code_pb2

from gateway.console import SAFE_METHODS
from gateway.errors import HTTP_STATUS_BY_CODE, HTTP_STATUS_BY_REASON
from gateway.oauth import TOKEN_ERRORS, TOKEN_RPC
from gateway.routing import Route
from identity_platform_api.common.v1 import errors_pb2, options_pb2

REASON_PREFIX = "ERROR_REASON_"
_REF = "#/components/schemas/"
ERROR_SCHEMA = "Error"
# The OAuth token route's errors (RFC 6749 section 5.2; gateway/oauth.py).
TOKEN_ERROR_SCHEMA = "TokenError"

# (gRPC code, reason) pairs any operation can answer, by what it has.
_EVERY = (
    ("INVALID_ARGUMENT", "MALFORMED_REQUEST"),
    ("INVALID_ARGUMENT", "INVALID_FIELD"),
    ("UNAVAILABLE", "DEPENDENCY_UNAVAILABLE"),
    ("UNAVAILABLE", "CIRCUIT_OPEN"),
    ("UNAVAILABLE", "NOT_READY"),
    ("DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED"),
    ("INTERNAL", "INTERNAL"),
)
# A credential that is presented must be valid, even on an anonymous route;
# past GATEWAY_FAILED_CREDENTIALS_PER_5_MIN refusals from one address, the
# refusal is RATE_LIMITED instead (gateway/credential_throttle.py).
_PRESENTED = (
    ("UNAUTHENTICATED", "API_KEY_INVALID"),
    ("UNAUTHENTICATED", "ACCESS_TOKEN_INVALID"),
    ("UNAUTHENTICATED", "ACCESS_TOKEN_REVOKED"),
    ("RESOURCE_EXHAUSTED", "RATE_LIMITED"),
)
_KEYED = (
    ("UNAUTHENTICATED", "API_KEY_MISSING"),
    ("PERMISSION_DENIED", "SCOPE_INSUFFICIENT"),
)
_WITH_BODY = (
    ("INVALID_ARGUMENT", "INVALID_BASE64"),
    ("RESOURCE_EXHAUSTED", "PAYLOAD_TOO_LARGE"),
    ("INVALID_ARGUMENT", "UNSUPPORTED_MEDIA_TYPE"),
    ("INVALID_ARGUMENT", "UNSUPPORTED_CONTENT_ENCODING"),
    ("DEADLINE_EXCEEDED", "REQUEST_BODY_TIMEOUT"),
)
_WITH_PATH = (("NOT_FOUND", "ROUTE_NOT_FOUND"),)
# A console session cookie (gateway/console.py), read on every route a console
# session can reach (a console role; not with an API key, which wins): an
# unknown, expired, revoked or disabled user's session is refused, and on a
# state-changing route (any method but GET, HEAD and OPTIONS) so is one
# without its CSRF token.
_CONSOLE_SESSION = (("UNAUTHENTICATED", "SESSION_INVALID"),)
_CONSOLE_CSRF = (("PERMISSION_DENIED", "CSRF_INVALID"),)
# A console session on a route for console admins only (identity_runtime.console_roles).
_ADMIN_ONLY = (("PERMISSION_DENIED", "ADMIN_REQUIRED"),)
# A browser's SDK session token (gateway/sdk_access.py) is read wherever a
# credential is (not on the OAuth token route, whose Authorization is the
# client's): an unknown, revoked or expired one is refused on any route; a
# valid one on any route it may not call (an internal one too: the route is
# checked before the scope), and on one it may, for another customer or from
# an origin its organisation does not list.
_SDK_TOKEN = (("UNAUTHENTICATED", "SDK_SESSION_INVALID"),)
_SDK_FORBIDDEN = (("PERMISSION_DENIED", "SDK_SESSION_ROUTE_FORBIDDEN"),)
_SDK_SESSION = (
    ("PERMISSION_DENIED", "SDK_SESSION_CUSTOMER_MISMATCH"),
    ("PERMISSION_DENIED", "ORIGIN_NOT_ALLOWED"),
)
_RETRY_AFTER = {"429", "503"}

# The presigned upload route (gateway/app.py `_upload`), the gateway's own:
# no route of the contract, no credential but the URL's signature. The
# gateway refuses a URL that cannot be one face-match signed (403
# UPLOAD_URL_INVALID), a Content-Length not a number or sent with
# Transfer-Encoding (400) or over its body limit (413), a Content-Encoding
# (415) and a body too slow (408); face-match's AuthorizeUpload and PutObject
# answer the rest (declared on PutObject). No INVALID_FIELD (there are no
# fields) and no ROUTE_NOT_FOUND (any key under the prefix is the URL's to
# verify).
UPLOAD_PUT_OBJECT_RPC = "identity.face_match.v1.SubmissionService/PutObject"
_UPLOAD = (
    ("INVALID_ARGUMENT", "MALFORMED_REQUEST"),
    ("PERMISSION_DENIED", "UPLOAD_URL_INVALID"),
    ("RESOURCE_EXHAUSTED", "PAYLOAD_TOO_LARGE"),
    ("INVALID_ARGUMENT", "UNSUPPORTED_CONTENT_ENCODING"),
    ("DEADLINE_EXCEEDED", "REQUEST_BODY_TIMEOUT"),
    *(pair for pair in _EVERY if pair[1] != "INVALID_FIELD"),
)


def known_reasons() -> list[str]:
    return [
        name.removeprefix(REASON_PREFIX)
        for name in errors_pb2.ErrorReason.keys()
        if name != REASON_PREFIX + "UNSPECIFIED"
    ]


def declared_errors(method: MethodDescriptor) -> list[tuple[str, str]]:
    """The (gRPC code, reason) pairs the RPC declares, in declaration order."""
    options = method.GetOptions()
    if not options.HasExtension(options_pb2.errors):
        return []
    pairs = []
    for case in options.Extensions[options_pb2.errors].cases:
        for reason in case.reasons:
            pairs.append(
                (case.code, errors_pb2.ErrorReason.Name(reason).removeprefix(REASON_PREFIX))
            )
    return pairs


def operation_errors(route: Route) -> list[tuple[str, str]]:
    """Every (gRPC code, reason) the operation can answer: common, then declared."""
    pairs: list[tuple[str, str]] = [*_EVERY, *_PRESENTED]
    if route.scope != "anonymous":
        pairs += _KEYED
    if route.body:
        pairs += _WITH_BODY
    if route.path.variables:
        pairs += _WITH_PATH
    if route.console_role:
        pairs += _CONSOLE_SESSION
        if route.verb not in SAFE_METHODS:
            pairs += _CONSOLE_CSRF
    if route.console_role == "admin":
        pairs += _ADMIN_ONLY
    if route.full_name != TOKEN_RPC:
        pairs += _SDK_TOKEN
        if route.sdk_session:
            pairs += _SDK_SESSION
        else:
            pairs += _SDK_FORBIDDEN
    for pair in declared_errors(route.method):
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def upload_errors(put_object: MethodDescriptor) -> list[tuple[str, str]]:
    """Every (gRPC code, reason) the presigned upload route can answer."""
    pairs = list(_UPLOAD)
    for pair in declared_errors(put_object):
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def http_status(code: str, reason: str) -> int:
    return HTTP_STATUS_BY_REASON.get(reason, HTTP_STATUS_BY_CODE[code])


def error_responses(route: Route) -> dict[str, Any]:
    """The operation's error responses by HTTP status, each naming its reasons."""
    schema = TOKEN_ERROR_SCHEMA if route.full_name == TOKEN_RPC else ERROR_SCHEMA
    return responses_of(operation_errors(route), schema)


def responses_of(pairs: Iterable[tuple[str, str]], schema: str = ERROR_SCHEMA) -> dict[str, Any]:
    """Error responses by HTTP status, each naming its reasons."""
    by_status: dict[str, list[tuple[str, str]]] = {}
    for code, reason in pairs:
        by_status.setdefault(str(http_status(code, reason)), []).append((code, reason))
    return {status: _response(status, by_status[status], schema) for status in sorted(by_status)}


def _response(status: str, pairs: Iterable[tuple[str, str]], schema: str) -> dict[str, Any]:
    pairs = list(pairs)
    lines = [f"`{code}` / `{reason}`" for code, reason in pairs]
    headers: dict[str, Any] = {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}}
    if status in _RETRY_AFTER:
        headers["Retry-After"] = {"$ref": "#/components/headers/RetryAfter"}
    if status == "401":
        headers["WWW-Authenticate"] = {"$ref": "#/components/headers/WWWAuthenticate"}
    return {
        "description": "; ".join(lines) + ".",
        "headers": headers,
        "content": {"application/json": {"schema": {"$ref": _REF + schema}}},
        "x-identity-reasons": [reason for _, reason in pairs],
    }


def error_schema(reason_notes: Mapping[str, str]) -> dict[str, Any]:
    """The `Error` schema: `reason` an open string whose known values are listed."""
    reasons = known_reasons()
    listed = "\n".join(
        f"- `{r}`" + (f": {reason_notes[r]}" if reason_notes.get(r) else "") for r in reasons
    )
    return {
        "type": "object",
        "description": "Every error: the HTTP status, the gRPC code, one machine-readable reason.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": [
                    "code",
                    "status",
                    "reason",
                    "domain",
                    "message",
                    "metadata",
                    "requestId",
                ],
                "properties": {
                    "code": {"type": "integer", "description": "The HTTP status code."},
                    "status": {
                        "type": "string",
                        "description": (
                            "The gRPC status code name (`"
                            + "`, `".join(n for n in code_pb2.Code.keys() if n != "OK")
                            + "`)."
                        ),
                        "examples": ["NOT_FOUND"],
                    },
                    "reason": {
                        "type": "string",
                        "description": (
                            "Machine-readable reason (identity.common.v1.ErrorReason without "
                            "its prefix). An open set: a newer server may send a reason not "
                            "listed here; treat an unknown one by its `status`. Known values:\n\n"
                            + listed
                        ),
                        "examples": ["CUSTOMER_NOT_FOUND"],
                        "x-identity-known-values": reasons,
                    },
                    "domain": {"type": "string", "const": "identity-platform"},
                    "message": {
                        "type": "string",
                        "description": "For humans; never contains personal data.",
                    },
                    "metadata": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "description": "Non-personal context: field, limit, retry_after_seconds.",
                    },
                    "requestId": {
                        "type": "string",
                        "description": "Quote it when reporting a problem.",
                    },
                },
            }
        },
    }


def token_error_schema() -> dict[str, Any]:
    """The `TokenError` schema: RFC 6749 section 5.2's error response, with
    the platform's reason, metadata and request id as extra members."""
    return {
        "type": "object",
        "description": (
            "An error of the OAuth token route, as RFC 6749 section 5.2 shapes it: "
            "`error` is a string code (invalid_client with 401; for what section 5.2 has "
            "no code, section 4.1.2.1's: temporarily_unavailable with 429, 503 and 504, "
            "server_error with 500)."
        ),
        "required": ["error", "error_description", "reason", "metadata", "request_id"],
        "properties": {
            "error": {"type": "string", "enum": list(TOKEN_ERRORS)},
            "error_description": {
                "type": "string",
                "pattern": "^[\\x20-\\x21\\x23-\\x5B\\x5D-\\x7E]+$",
                "description": "For humans (printable ASCII); never contains personal data.",
            },
            "reason": {
                "type": "string",
                "description": "The platform's reason, as in `Error` (an open set).",
                "examples": ["CLIENT_CREDENTIALS_INVALID"],
            },
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "request_id": {
                "type": "string",
                "description": "Quote it when reporting a problem.",
            },
        },
    }
