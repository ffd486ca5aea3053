"""Browser-safe access for the web SDK (issue 18): SDK session tokens and CORS.

A partner's backend mints a short-lived, single-customer token with its API
key (`POST /api/identity/sdk-sessions`, kyc-tier); the browser sends it as
`Authorization: Bearer sdk_...`. The gateway resolves it with kyc-tier's
mesh-only `AuthenticateSdkSession` on every request (no cache: a revocation
or the expiry stops it at once; a session an OAuth client minted also needs
the client still active, checked as for its access tokens) and then holds it to:

- routes whose contract marks them `sdk_session` (the capture routes and the
  reads the SDK needs), 403 SDK_SESSION_ROUTE_FORBIDDEN elsewhere;
- its own customer: the request's `customer_id` must be the session's,
  403 SDK_SESSION_CUSTOMER_MISMATCH otherwise;
- its organisation's SDK origins: a cross-origin request whose `Origin` is
  not one of them is refused (403 ORIGIN_NOT_ALLOWED, before anything happens) and gets
  no CORS header, so the browser refuses it as well.

CORS is answered only on `sdk_session` routes: a preflight (OPTIONS with
`Origin` and `Access-Control-Request-Method`, no token) is allowed when some
organisation lists the origin (kyc-tier's `CheckSdkOrigin`, remembered a few
seconds); a response carries `Access-Control-Allow-Origin` only when the
session's organisation lists the request's origin. No credentials (cookies)
are ever allowed cross-origin.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping

from google.protobuf.message import Message
from starlette.responses import Response

from gateway.auth import INVALID_TOKEN_CHALLENGE, Principal
from gateway.errors import GatewayError
from gateway.routing import Route

TOKEN_PREFIX = "sdk_"
KIND = "sdk_session"
_TOKEN_SHAPE = re.compile(r"sdk_[a-z2-7]{16,64}")
ALLOW_HEADERS = "Authorization, Content-Type, X-Request-Id"
EXPOSE_HEADERS = "X-Request-Id, Retry-After"
PREFLIGHT_MAX_AGE_SECONDS = 600
# How long an answer about an origin (for preflights) is remembered.
ORIGIN_CACHE_SECONDS = 5.0
_ORIGIN_CACHE_ENTRIES = 1000


def invalid_token(
    message: str = "the SDK session token is unknown, revoked or expired",
) -> GatewayError:
    return GatewayError(
        "UNAUTHENTICATED", "SDK_SESSION_INVALID", message, headers=INVALID_TOKEN_CHALLENGE
    )


def presented_token(all_authorization: list[str], all_api_keys: list[str]) -> str | None:
    """The SDK session token of `Authorization: Bearer sdk_...`, or None when
    the request presents something else (an API key, an access token, nothing)."""
    if len(all_authorization) != 1:
        return None
    scheme, _, token = all_authorization[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX):
        return None
    if all_api_keys:
        raise invalid_token("send an SDK session token or an API key, not both")
    if not _TOKEN_SHAPE.fullmatch(token):
        raise invalid_token("the SDK session token is malformed")
    return token


def principal(org_id: str, session_id: str, customer_id: str, origins: list[str]) -> Principal:
    return Principal(
        org_id=org_id,
        credential_id=session_id,
        scopes=frozenset({"public"}),
        kind=KIND,
        customer_id=customer_id,
        origins=frozenset(origins),
    )


def is_sdk(caller: Principal | None) -> bool:
    return caller is not None and caller.kind == KIND


def same_origin(origin: str, host: str | None) -> bool:
    """Whether a request's Origin is the gateway's own (the `/sdk-demo` page):
    browsers send Origin on same-origin POSTs too, and no page can forge it."""
    _, sep, rest = origin.partition("://")
    return bool(sep) and host is not None and rest.lower() == host.strip().lower()


def check_route(route: Route, caller: Principal, origin: str | None, demo_host: str | None) -> None:
    """Before the body is read: the route, and the origin of a cross-origin call.
    `demo_host`, the request's Host, only while the `/sdk-demo` page is on: its
    same-origin requests need no listed origin. Host is the client's own word
    (a DNS-rebound page sends a matching one), so without the demo (production)
    every Origin must be listed."""
    if not is_sdk(caller):
        return
    if not route.sdk_session:
        raise GatewayError(
            "PERMISSION_DENIED",
            "SDK_SESSION_ROUTE_FORBIDDEN",
            "an SDK session token opens only its customer's capture routes",
        )
    if origin is not None and origin not in caller.origins and not same_origin(origin, demo_host):
        raise GatewayError(
            "PERMISSION_DENIED",
            "ORIGIN_NOT_ALLOWED",
            "this page's origin is not one of the organisation's SDK origins",
        )


def check_customer(caller: Principal | None, message: Message) -> None:
    """After the request is built: the token's own customer only."""
    if not is_sdk(caller):
        return
    assert caller is not None
    if getattr(message, "customer_id", None) != caller.customer_id:
        raise GatewayError(
            "PERMISSION_DENIED",
            "SDK_SESSION_CUSTOMER_MISMATCH",
            "the SDK session token belongs to another customer",
        )


def response_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": EXPOSE_HEADERS,
        "Vary": "Origin",
    }


def preflight_headers(origin: str, method: str) -> dict[str, str]:
    return {
        **response_headers(origin),
        "Access-Control-Allow-Methods": method,
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
    }


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    return (
        method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers
    )


def add_cors(origin: str | None, caller: Principal | None, response: Response) -> None:
    """CORS headers on an SDK session's response, for its organisation's origins only."""
    if origin is None or caller is None or not is_sdk(caller) or origin not in caller.origins:
        return
    response.headers.update(response_headers(origin))


async def preflight(route: Route, headers: Mapping[str, str], known: KnownOrigins) -> Response:
    """A CORS preflight: allowed on SDK-session routes for an origin some
    organisation lists; anything else gets no CORS header (403)."""
    origin = headers["origin"]
    if not route.sdk_session or not await known.allowed(origin):
        raise GatewayError(
            "PERMISSION_DENIED",
            "ORIGIN_NOT_ALLOWED",
            "cross-origin calls are allowed only to the SDK's routes, from an SDK origin",
        )
    return Response(status_code=204, headers=preflight_headers(origin, route.verb))


class KnownOrigins:
    """Whether some organisation lists an origin (asked of kyc-tier), each
    answer remembered ORIGIN_CACHE_SECONDS, bounded."""

    def __init__(
        self,
        source: Callable[[str], Awaitable[bool]],
        clock: Callable[[], float] = time.monotonic,
    ):
        self._source = source
        self._clock = clock
        self._answers: OrderedDict[str, tuple[float, bool]] = OrderedDict()

    async def allowed(self, origin: str) -> bool:
        if len(origin) > 255:
            return False
        known = self._answers.get(origin)
        if known is not None and known[0] > self._clock():
            return known[1]
        answer = await self._source(origin)
        self._answers[origin] = (self._clock() + ORIGIN_CACHE_SECONDS, answer)
        self._answers.move_to_end(origin)
        while len(self._answers) > _ORIGIN_CACHE_ENTRIES:
            self._answers.popitem(last=False)
        return answer
