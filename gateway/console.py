"""Analyst console sessions at the gateway: cookies and CSRF.

A console session is an opaque token kyc-tier issues on sign-in
(`ConsoleAuthService/Login`, `/FinishPasskeyAuthentication`). The gateway
never shows it to scripts: it moves it from the answer into the
`identity_session` cookie (HttpOnly, SameSite=Strict, Path=/, Secure unless
the request was made to localhost over plain HTTP) and answers the token
empty. The session's CSRF token is answered in the body and set as the
readable `identity_csrf` cookie; every state-changing request made with the
session cookie (any method but GET, HEAD and OPTIONS) must send it back as
`X-CSRF-Token` (PERMISSION_DENIED / CSRF_INVALID otherwise).

On each request without an API key, the cookie is resolved by kyc-tier
(`AuthenticateSession`, no cache: a logout or expiry ends the session on the
next request). The session's caller has the internal scope and acts as
`console_user:<user_id>`, so its actions are audited under the analyst.
An API key, when presented, wins and the cookie is ignored.

A 401 about the console's sign-in carries a challenge of the cookie scheme
(`Cookie realm="identity-platform", cookie-name="identity_session",
form-action="/api/auth/login"`, after draft-broyer-http-cookie-auth: no
registered scheme describes a session cookie, and unlike Basic none makes a
browser prompt): with `error="invalid_token"` when the session cookie was
refused (unknown, expired, revoked: sign in again), without one when a
sign-in failed (wrong password or passkey).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import REALM
from gateway.errors import GatewayError
from identity_platform_api.kyc_tier.v1 import console_auth_pb2
from identity_runtime.errors import DomainError

SESSION_COOKIE = "identity_session"
CSRF_COOKIE = "identity_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
AUTHENTICATE_SESSION_RPC = "/identity.kyc_tier.v1.ConsoleAuthService/AuthenticateSession"
_SERVICE = "identity.kyc_tier.v1.ConsoleAuthService/"
SIGN_IN_RPCS = frozenset({_SERVICE + "Login", _SERVICE + "FinishPasskeyAuthentication"})
LOGOUT_RPC = _SERVICE + "Logout"
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
LOGIN_PATH = "/api/auth/login"
_SESSION_SCHEME = (
    f'Cookie realm="{REALM}", cookie-name="{SESSION_COOKIE}", form-action="{LOGIN_PATH}"'
)


def challenge(session_refused: bool = False) -> dict[str, str]:
    """The cookie scheme's challenge; `invalid_token` when the session was refused."""
    error = ', error="invalid_token"' if session_refused else ""
    return {"WWW-Authenticate": _SESSION_SCHEME + error}


def session_refused(error: DomainError) -> GatewayError:
    """kyc-tier's refusal of the session cookie (SESSION_INVALID) as a 401
    with its challenge."""
    return GatewayError(
        "UNAUTHENTICATED", error.reason, error.message, error.metadata, challenge(True)
    )


def session_token(request: Request) -> str:
    return request.cookies.get(SESSION_COOKIE, "")


def session_request(request: Request) -> console_auth_pb2.AuthenticateSessionRequest:
    """What kyc-tier is asked about the request's session cookie."""
    check = request.method not in SAFE_METHODS
    return console_auth_pb2.AuthenticateSessionRequest(
        token=session_token(request),
        check_csrf=check,
        csrf_token=request.headers.get(CSRF_HEADER, "") if check else "",
    )


def secure_cookies(request: Request) -> bool:
    """Secure, except on plain HTTP to localhost (development)."""
    host = request.headers.get("host", "").lower()
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return not (request.url.scheme == "http" and name in _LOCAL_HOSTS)


def prepare(full_name: str, request: Request, message: Message) -> None:
    """Logout names the session it ends from the cookie (the client does not)."""
    if full_name == LOGOUT_RPC and isinstance(message, console_auth_pb2.LogoutRequest):
        message.session_token = session_token(request)


def finish(full_name: str, request: Request, reply: Message) -> Mapping[str, str] | None:
    """Move a new session's token into cookies (answered empty); clear them on
    logout. Returns the Set-Cookie values to add, or None."""
    if full_name in SIGN_IN_RPCS:
        session = getattr(reply, "session", None)
        if not isinstance(session, console_auth_pb2.Session) or not session.token:
            return None
        token, csrf = session.token, session.csrf_token
        session.token = ""
        max_age = max(1, int(session.expires_at.seconds - time.time()))
        return _cookies(request, token, csrf, max_age)
    if full_name == LOGOUT_RPC:
        return _cookies(request, "", "", 0)
    return None


def _cookies(request: Request, token: str, csrf: str, max_age: int) -> dict[str, str]:
    secure = "; Secure" if secure_cookies(request) else ""
    common = f"Path=/; Max-Age={max_age}; SameSite=Strict{secure}"
    return {
        SESSION_COOKIE: f"{SESSION_COOKIE}={token}; {common}; HttpOnly",
        CSRF_COOKIE: f"{CSRF_COOKIE}={csrf}; {common}",
    }


def set_cookies(response: Response, cookies: Mapping[str, str] | None) -> None:
    for value in (cookies or {}).values():
        response.headers.append("set-cookie", value)
