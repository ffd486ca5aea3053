"""Per-call context carried across async code and onto downstream calls.

The server interceptors set these from incoming metadata; the client
interceptor copies them onto every outgoing call, so a request id, the tenant
and the remaining deadline follow a request through the whole mesh.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from identity_runtime.meshauth import Caller

# Metadata keys (gRPC metadata keys are lower case). The organisation, actor
# and scopes travel only inside the signed caller token (identity_runtime.meshauth);
# a bare x-identity-org header is ignored.
REQUEST_ID_KEY = "x-request-id"
# Organisation ids are what kyc-tier issues ("org_..."): at most 40 letters,
# digits, '_' or '-'. Services that keep no organisation records store the
# id the call carries, so its shape is checked here.
ORG_ID_MAX = 40


@dataclass(frozen=True)
class CallContext:
    request_id: str
    org_id: str = ""
    actor: str = ""
    scopes: tuple[str, ...] = ()
    # The mesh service that signed the caller's token ("api-key" for a key).
    issuer: str = ""
    # Absolute time.monotonic() by which the call must finish; None = no deadline.
    deadline: float | None = None
    method: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def time_remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()


_current: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar(
    "identity_call_context", default=None
)
# What the accessors below answer outside a call: empty strings.
_NO_CALL = CallContext(request_id="")


# The caller the auth interceptor verified (identity_runtime.authz) sets,
# then resets, around each call; the call context's organisation, actor and
# scopes come from it and nowhere else.
VERIFIED_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "identity_verified_caller", default=None
)


# The platform's own ids pass the rule it holds callers' ids to
# (identity_runtime.request_ids), or the next service would replace the
# gateway's id and the hops would no longer correlate: 32 hex digits without
# a run of 9 digits hold nothing the log scrubbers mask (about one random id
# in seven is drawn again).
_NINE_DIGITS = re.compile(r"[0-9]{9}")


def new_request_id() -> str:
    while True:
        candidate = uuid.uuid4().hex
        if not _NINE_DIGITS.search(candidate):
            return candidate


def current() -> CallContext | None:
    return _current.get()


def bind(ctx: CallContext) -> contextvars.Token:
    return _current.set(ctx)


def reset(token: contextvars.Token) -> None:
    _current.reset(token)


@contextlib.contextmanager
def deadline_within(seconds: float) -> Iterator[None]:
    """The current call's deadline, no later than `seconds` from now, inside
    the block (downstream calls inherit it); unchanged if already sooner."""
    bound = _current.get()
    latest = time.monotonic() + seconds
    if bound is None or (bound.deadline is not None and bound.deadline <= latest):
        yield
        return
    token = _current.set(dataclasses.replace(bound, deadline=latest))
    try:
        yield
    finally:
        _current.reset(token)


def request_id() -> str:
    return (_current.get() or _NO_CALL).request_id


def org_id() -> str:
    return (_current.get() or _NO_CALL).org_id


def is_org_id(value: str) -> bool:
    """Whether `value` has an organisation id's shape (ORG_ID_MAX, above)."""
    return (
        0 < len(value) <= ORG_ID_MAX
        and value.isascii()
        and value.replace("_", "").replace("-", "").isalnum()
    )


def require_org() -> str:
    """The caller's organisation; a call without one is refused."""
    from identity_runtime.errors import Unauthenticated

    org = org_id()
    if not org:
        raise Unauthenticated("the caller token carries no organisation", "TENANT_MISSING")
    if not is_org_id(org):
        raise Unauthenticated(
            "the caller token's organisation is not an organisation id",
            "TENANT_MISSING",
        )
    return org


# The kinds of actor a call may carry ("<kind>:<id>"): a partner's API key,
# a Face Match OAuth client, a browser's capture-SDK session (the gateway's
# principals), an analyst's console session, a mesh service, an operator's
# tool, the customer. The audit chain accepts these and no other.
OAUTH_CLIENT_KIND = "oauth_client"
SDK_SESSION_KIND = "sdk_session"
ACTOR_KINDS = (
    "api_key",
    OAUTH_CLIENT_KIND,
    SDK_SESSION_KIND,
    "console_user",
    "service",
    "system",
    "customer",
)


def actor() -> str:
    return (_current.get() or _NO_CALL).actor


def issuer() -> str:
    return (_current.get() or _NO_CALL).issuer
