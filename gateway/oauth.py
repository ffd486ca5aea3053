"""OAuth 2.0 access tokens as bearer credentials.

face-match issues client-credential tokens (EdDSA JWTs, `POST /api/oauth/token`)
and publishes their public keys (`GET /api/oauth/jwks`). The gateway accepts
such a token wherever it accepts an API key: `Authorization: Bearer <JWT>`.
It verifies the signature against the JWKS (fetched from face-match over the
mesh, kept `oauth_jwks_cache_seconds`, fetched again at most every 10 s when
a token names an unknown key: that is how a rotated-in key is learnt), the
issuer, the audience, the expiry and the subject, then asks whether the
token's client is still active (`active_client`: face-match's
AuthenticateClient, remembered like an API key and dropped when face-match's
client revocation epoch moves, gateway/auth.py), so a revoked client's tokens
are refused with ACCESS_TOKEN_REVOKED within the revocation check (1 s by
default), not at their expiry; and maps the token to a principal:
organisation `org`, actor `oauth_client:<id>`, scope `public`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.auth import REALM
from gateway.errors import shown_name
from identity_runtime.errors import DomainError, InvalidArgument, Unauthenticated

AUDIENCE = "identity-platform"
SUBJECT_PREFIX = "oauth_client:"
_REFETCH_SECONDS = 10.0


TOKEN_RPC = "identity.face_match.v1.OAuthService/IssueToken"
FORM = "application/x-www-form-urlencoded"
# The token route's 401 (invalid_client, RFC 6749 section 5.2): the header
# scheme a client authenticates with there is HTTP Basic (RFC 7617; the
# credentials are read as UTF-8), whether this client used it or the body.
CLIENT_CHALLENGE = {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'}
# Every answer of the token route, a token or an error (RFC 6749 sections 5.1, 5.2).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# The `error` codes the token route answers: RFC 6749 section 5.2's, and for
# what it has none (429, 5xx) section 4.1.2.1's: the client may retry later.
TOKEN_ERRORS = (
    "invalid_request",
    "invalid_client",
    "unsupported_grant_type",
    "invalid_scope",
    "temporarily_unavailable",
    "server_error",
)
# RFC 6749's error_description: printable ASCII but '"' and '\\'.
_DESCRIPTION = str.maketrans({'"': "'", "\\": "/"})


def is_form(content_type: str) -> bool:
    return content_type.partition(";")[0].strip().lower() == FORM


def _malformed(message: str) -> InvalidArgument:
    return InvalidArgument(message, "MALFORMED_REQUEST")


def token_request_json(form: bytes, authorization: str | None) -> bytes:
    """RFC 6749's token request (form-encoded body, client credentials in the
    body or as HTTP Basic, section 2.3.1) as the JSON body of IssueToken."""
    try:
        fields = urllib.parse.parse_qs(form.decode("ascii"), strict_parsing=bool(form))
    except (UnicodeDecodeError, ValueError):
        raise _malformed("the form body is not valid application/x-www-form-urlencoded") from None
    if any(len(values) > 1 for values in fields.values()):
        raise _malformed("a form parameter is repeated")
    values = {name: v[0] for name, v in fields.items()}
    unknown = set(values) - {"grant_type", "client_id", "client_secret", "scope"}
    if unknown:
        raise _malformed(f"unknown form parameter {shown_name(sorted(unknown)[0])!r}")
    if not values.get("grant_type"):
        raise _malformed("the grant_type parameter is missing")
    if authorization:
        scheme, _, encoded = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            raise _malformed("client authentication is HTTP Basic or the form body")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise _malformed("the Basic credentials are not valid base64") from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise _malformed("the Basic credentials have no ':'")
        if "client_id" in values or "client_secret" in values:
            raise _malformed("send the client credentials once: Basic or the body")
        values["client_id"] = urllib.parse.unquote_plus(client_id)
        values["client_secret"] = urllib.parse.unquote_plus(secret)
    return json.dumps(values).encode()


def token_error(error: DomainError, status: int) -> str:
    """The RFC 6749 `error` code of an error of the token route answered `status`."""
    if status == 401:
        return "invalid_client"
    if status in (429, 503, 504):
        return "temporarily_unavailable"
    if status >= 500:
        return "server_error"
    field = error.metadata.get("field") if error.reason == "INVALID_FIELD" else None
    if field == "grant_type":
        return "unsupported_grant_type"
    return "invalid_scope" if field == "scope" else "invalid_request"


def token_error_body(error: DomainError, status: int, request_id: str) -> bytes:
    """The token route's error (RFC 6749 section 5.2): `error` a string code,
    `error_description` printable ASCII; the platform's reason, metadata and
    request id as extra members, so support can still trace the call."""
    description = error.message.translate(_DESCRIPTION)
    body = {
        "error": token_error(error, status),
        "error_description": "".join(c if " " <= c <= "~" else "?" for c in description),
        "reason": error.reason,
        "metadata": dict(error.metadata),
        "request_id": request_id,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith("idk_")


@dataclass(frozen=True)
class TokenClaims:
    org_id: str
    client_id: str
    scopes: frozenset[str]


def public_keys(jwks: list[Mapping[str, str]]) -> dict[str, Ed25519PublicKey]:
    keys = {}
    for jwk in jwks:
        if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and jwk.get("kid"):
            raw = jwk["x"] + "=" * (-len(jwk["x"]) % 4)
            keys[jwk["kid"]] = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(raw))
    return keys


def invalid_token() -> Unauthenticated:
    return Unauthenticated("the access token is not valid", "ACCESS_TOKEN_INVALID")


def verify(token: str, keys: Mapping[str, Ed25519PublicKey], issuer: str) -> TokenClaims:
    """The token's claims; UNAUTHENTICATED / ACCESS_TOKEN_INVALID otherwise."""
    try:
        key = keys.get(str(jwt.get_unverified_header(token).get("kid", "")))
        if key is None:
            raise invalid_token()
        claims = jwt.decode(
            token,
            key,
            algorithms=["EdDSA"],
            audience=AUDIENCE,
            issuer=issuer,
            leeway=5,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.PyJWTError:
        raise invalid_token() from None
    sub, org = str(claims.get("sub", "")), str(claims.get("org", ""))
    if not sub.startswith(SUBJECT_PREFIX) or not org:
        raise invalid_token()
    scopes = frozenset(str(claims.get("scope", "")).split()) & {"public"}
    return TokenClaims(org, sub[len(SUBJECT_PREFIX) :], scopes)


def unknown_kid(token: str, keys: Mapping[str, Ed25519PublicKey]) -> bool:
    try:
        return str(jwt.get_unverified_header(token).get("kid", "")) not in keys
    except jwt.PyJWTError:
        return False


# The organisation of an active client; UNAUTHENTICATED when it is revoked.
ActiveClient = Callable[[str], Awaitable[str]]


class AccessTokens:
    """Verifies bearer access tokens against face-match's JWKS, cached, and
    (with `active_client`) that their client has not been revoked."""

    def __init__(
        self,
        fetch_jwks: Callable[[], Awaitable[list[Mapping[str, str]]]],
        issuer: str,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        active_client: ActiveClient | None = None,
    ):
        self._active_client = active_client
        self._fetch = fetch_jwks
        self.issuer = issuer
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def _refresh(self, *, forced: bool) -> None:
        async with self._lock:
            now = self._clock()
            age = None if self._fetched_at is None else now - self._fetched_at
            if age is not None and age < (_REFETCH_SECONDS if forced else self._cache_seconds):
                return
            self._keys = public_keys(await self._fetch())
            self._fetched_at = now

    async def verify(self, token: str) -> TokenClaims:
        await self._refresh(forced=False)
        if unknown_kid(token, self._keys):
            await self._refresh(forced=True)
        claims = verify(token, self._keys, self.issuer)
        if self._active_client is not None:
            # Only a token whose signature verified reaches face-match.
            if await self._active_client(claims.client_id) != claims.org_id:
                raise invalid_token()
        return claims
