"""API-key authentication and scope checks.

A partner presents its key as `Authorization: Bearer idk_...` or
`X-Api-Key: idk_...`. The gateway resolves it by calling kyc-tier's
`ApiKeyService/AuthenticateApiKey` (keys are stored there as peppered
hashes) and remembers the answer for `auth_cache_seconds`:

- the cache is keyed by a keyed BLAKE2b digest of the key under a random
  per-process secret, never the key itself;
- it is bounded (least recently used entries go first);
- unknown keys are remembered too (so a flood of bad keys does not become a
  flood of database lookups), transport failures are not;
- concurrent requests with the same key share one lookup.

Revocation reaches every replica within `auth_revocation_check_seconds`
(1 s by default): each replica asks kyc-tier for the revocation epoch (a
number that grows with every revocation) at most that often, on the request
path, and an entry cached under another epoch is not used. Without an
answer about the epoch (kyc-tier unreachable) entries live out their
`auth_cache_seconds`, as before.

Scopes: a route's scope comes from `(identity.common.v1.access)`; `public`
routes take a public or an internal key (analysts use customer routes too),
`internal` routes need the internal scope, `anonymous` routes need no key.

Every 401 carries the Bearer challenge (RFC 6750 section 3): without an
error code when the request carried no credential (or one of another
scheme); `error="invalid_token"` when the key or access token it carried is
malformed, unknown, expired or revoked; `error="invalid_request"` when it
carried several. A 403 for a scope a key or token lacks carries
`error="insufficient_scope"` and the scope the route needs. (The console's
session cookie and the OAuth token route have challenges of their own:
gateway.console, gateway.oauth; `passed_on_challenge` covers a service's 401.)
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from gateway.errors import GatewayError
from identity_runtime.errors import DomainError
from identity_runtime.logs import get_logger

log = get_logger("identity.gateway.auth")

KEY_PREFIX = "idk_"
_KEY_SHAPE = re.compile(r"idk_[A-Za-z0-9_\-]{8,96}")
REALM = "identity-platform"
_REALM = f'Bearer realm="{REALM}"'
_CHALLENGE = {"WWW-Authenticate": _REALM}
INVALID_TOKEN_CHALLENGE = {"WWW-Authenticate": f'{_REALM}, error="invalid_token"'}
_INVALID_REQUEST_CHALLENGE = {"WWW-Authenticate": f'{_REALM}, error="invalid_request"'}


@dataclass(frozen=True)
class Principal:
    org_id: str
    # The credential's id: the API key's (kind "api_key"), the OAuth client's
    # (kind "oauth_client") or the SDK session's (kind "sdk_session").
    credential_id: str
    scopes: frozenset[str]
    kind: str = "api_key"
    # Set for an analyst's console session (gateway.console) instead of a key,
    # with the user's roles as kyc-tier answered them for this request.
    console_user_id: str = ""
    console_roles: frozenset[str] = frozenset()
    # Set for a browser's SDK session (kind "sdk_session", gateway.sdk_access):
    # its one customer and its organisation's SDK origins.
    customer_id: str = ""
    origins: frozenset[str] = frozenset()

    @property
    def actor(self) -> str:
        if self.console_user_id:
            return f"console_user:{self.console_user_id}"
        return f"{self.kind}:{self.credential_id}"


def _unauthenticated(
    reason: str, message: str, challenge: Mapping[str, str] = INVALID_TOKEN_CHALLENGE
) -> GatewayError:
    """A 401 about the credential the request carried (`invalid_token` unless
    `challenge` says otherwise)."""
    return GatewayError("UNAUTHENTICATED", reason, message, headers=challenge)


def presented_key(
    headers: Mapping[str, str], all_authorization: list[str], all_api_keys: list[str]
) -> str:
    """The key in the request headers; API_KEY_MISSING / API_KEY_INVALID otherwise."""
    if len(all_authorization) > 1 or len(all_api_keys) > 1:
        raise _unauthenticated(
            "API_KEY_INVALID", "send one API key, in one header", _INVALID_REQUEST_CHALLENGE
        )
    candidates = []
    if all_authorization:
        scheme, _, token = all_authorization[0].strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            # Another scheme (Basic...) carries no bearer credential: no error code.
            raise _unauthenticated(
                "API_KEY_INVALID",
                "use `Authorization: Bearer idk_...` or `X-Api-Key: idk_...`",
                _CHALLENGE if scheme.lower() != "bearer" else _INVALID_REQUEST_CHALLENGE,
            )
        candidates.append(token.strip())
    if all_api_keys:
        candidates.append(all_api_keys[0].strip())
    if not candidates:
        raise _unauthenticated(
            "API_KEY_MISSING",
            "this route needs an API key: `Authorization: Bearer idk_...`",
            _CHALLENGE,
        )
    if len(set(candidates)) > 1:
        raise _unauthenticated(
            "API_KEY_INVALID",
            "Authorization and X-Api-Key carry different keys",
            _INVALID_REQUEST_CHALLENGE,
        )
    key = candidates[0]
    if not _KEY_SHAPE.fullmatch(key):
        raise _unauthenticated("API_KEY_INVALID", "the API key is malformed")
    return key


def bearer_access_token(all_authorization: list[str], all_api_keys: list[str]) -> str | None:
    """The OAuth access token (a JWT) of `Authorization: Bearer <JWT>`, or None
    when the request presents an API key (or nothing) instead."""
    if len(all_authorization) != 1:
        return None
    scheme, _, token = all_authorization[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or token.startswith(KEY_PREFIX) or token.count(".") != 2:
        return None
    if all_api_keys:
        raise _unauthenticated(
            "API_KEY_INVALID",
            "send an access token or an API key, not both",
            _INVALID_REQUEST_CHALLENGE,
        )
    return token


# Reasons that refuse the bearer credential the request carried.
_CREDENTIAL_REFUSED = frozenset(
    {"API_KEY_INVALID", "ACCESS_TOKEN_INVALID", "ACCESS_TOKEN_REVOKED", "SDK_SESSION_INVALID"}
)


def passed_on_challenge(reason: str) -> dict[str, str]:
    """The Bearer challenge of a service's UNAUTHENTICATED passed on as a 401
    (RFC 7235 requires one): `invalid_token` when its reason refuses the
    request's credential; none otherwise (TENANT_MISSING: not the client's
    credential, which must not be discarded for it). A service refusing the
    gateway's own caller token is no 401 at all (errors.from_rpc_error: 503)."""
    return INVALID_TOKEN_CHALLENGE if reason in _CREDENTIAL_REFUSED else _CHALLENGE


def token_refused(error: DomainError) -> GatewayError:
    """An access token's refusal (invalid, expired, revoked) as a 401 with its
    Bearer challenge, `error="invalid_token"`."""
    return _unauthenticated(error.reason, error.message)


def authorize(route_scope: str, principal: Principal) -> None:
    """PERMISSION_DENIED / SCOPE_INSUFFICIENT when the key may not call the
    route; for a key or token (not a console session) with the Bearer
    challenge `error="insufficient_scope"` naming the scope needed."""
    if route_scope == "anonymous":
        return
    allowed = {"internal"} if route_scope == "internal" else {"public", "internal"}
    if not principal.scopes & allowed:
        challenge = (
            {}
            if principal.console_user_id
            else {
                "WWW-Authenticate": (f'{_REALM}, error="insufficient_scope", scope="{route_scope}"')
            }
        )
        raise GatewayError(
            "PERMISSION_DENIED",
            "SCOPE_INSUFFICIENT",
            f"this route needs an API key with the {route_scope} scope",
            {"required_scope": route_scope},
            headers=challenge,
        )


Resolver = Callable[[str], Awaitable[Principal]]
# The revocation epoch: grows with every revocation.
EpochSource = Callable[[], Awaitable[int]]


class ApiKeyCache:
    """Resolves keys through `resolver`, remembering answers for `ttl` seconds."""

    def __init__(
        self,
        resolver: Resolver,
        ttl_seconds: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
        revocations: EpochSource | None = None,
        revocation_check_seconds: float = 1.0,
    ):
        self._resolver = resolver
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._secret = os.urandom(32)
        # digest -> (expires_at, Principal or the UNAUTHENTICATED error, epoch)
        self._entries: OrderedDict[bytes, tuple[float, Principal | DomainError, int | None]] = (
            OrderedDict()
        )
        self._inflight: dict[bytes, asyncio.Future[Principal | DomainError]] = {}
        self.lookups = 0
        self._revocations = revocations
        self._check_every = revocation_check_seconds
        # The last epoch kyc-tier answered, and when it was asked.
        self._epoch: int | None = None
        self._epoch_checked_at = -math.inf
        self._epoch_check: asyncio.Future[None] | None = None
        self.epoch_checks = 0

    def digest(self, key: str) -> bytes:
        return hashlib.blake2b(key.encode(), key=self._secret, digest_size=32).digest()

    def __len__(self) -> int:
        return len(self._entries)

    async def authenticate(self, key: str) -> Principal:
        await self._follow_revocations()
        digest = self.digest(key)
        outcome = self._cached(digest)
        if outcome is None:
            outcome = await self._lookup_once(key, digest)
        if isinstance(outcome, DomainError):
            raise _unauthenticated(outcome.reason, outcome.message)
        return outcome

    def _cached(self, digest: bytes) -> Principal | DomainError | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        expires_at, outcome, epoch = entry
        if self._clock() >= expires_at or epoch != self._epoch:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return outcome

    async def _lookup_once(self, key: str, digest: bytes) -> Principal | DomainError:
        shared = self._inflight.get(digest)
        if shared is None:
            shared = asyncio.ensure_future(self._lookup(key, digest))
            self._inflight[digest] = shared
            shared.add_done_callback(lambda _: self._inflight.pop(digest, None))
        # One caller giving up must not cancel the lookup the others wait for.
        return await asyncio.shield(shared)

    async def _follow_revocations(self) -> None:
        """Ask for the revocation epoch when the last answer is older than the
        check interval (one question at a time, shared by concurrent requests)."""
        if self._revocations is None or self._clock() - self._epoch_checked_at < self._check_every:
            return
        check = self._epoch_check
        if check is None:
            check = asyncio.ensure_future(self._check_epoch(self._revocations))
            self._epoch_check = check
            check.add_done_callback(lambda _: setattr(self, "_epoch_check", None))
        await asyncio.shield(check)

    async def _check_epoch(self, source: EpochSource) -> None:
        self.epoch_checks += 1
        asked_at = self._clock()
        try:
            epoch = await source()
        except DomainError as exc:
            log.warning("revocation epoch unavailable; cached keys kept", reason=exc.reason)
            self._epoch_checked_at = asked_at
            return
        self._epoch = epoch
        self._epoch_checked_at = asked_at

    async def _lookup(self, key: str, digest: bytes) -> Principal | DomainError:
        self.lookups += 1
        # Cached under the epoch known when the lookup started: a revocation
        # that moves the epoch meanwhile makes the answer unusable.
        epoch = self._epoch
        try:
            outcome: Principal | DomainError = await self._resolver(key)
        except DomainError as exc:
            if exc.code != "UNAUTHENTICATED":
                raise  # kyc-tier unreachable, deadline...: not an answer about the key
            outcome = exc
        if self._ttl > 0:
            self._entries[digest] = (self._clock() + self._ttl, outcome, epoch)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return outcome
