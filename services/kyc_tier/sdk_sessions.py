"""Browser SDK access (issue 18): single-customer session tokens and the
organisation's SDK origins.

A partner's backend mints a session for one of its customers
(`POST /api/identity/sdk-sessions`); the browser's SDK sends the token
(`sdk_<32 base32 characters>`, 160 random bits) and the gateway resolves it
here on every request (`AuthenticateSdkSession`). Why an opaque token rather
than a signed JWT: a revocation must stop it on the next request, the
gateway then needs one lookup anyway, and there is no token-signing key to
distribute and rotate. Only a peppered HMAC of the token is stored (the API
keys' pepper and recipe, `PartnerDirectory.hash_secret`).
"""

from __future__ import annotations

import base64
import secrets
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from identity_runtime import context
from identity_runtime.convert import same_named
from identity_runtime.errors import NotFound, Unauthenticated, invalid_field
from identity_store.types import utcnow
from services.kyc_tier import models, outbox, records
from services.kyc_tier.console_models import ConsoleUser
from services.kyc_tier.org_rows import owned
from services.kyc_tier.paging import Page, newest_first

if TYPE_CHECKING:
    # partners.py ends a revoked key's sessions with end_minted_by.
    from services.kyc_tier.partners import PartnerDirectory

TOKEN_PREFIX = "sdk_"
MAX_ORIGINS = 20


@dataclass(frozen=True)
class SdkSessionRecord:
    session_id: str
    org_id: str
    customer_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    # The credential that minted it ("api_key:...", "console_user:...").
    created_by: str


@dataclass(frozen=True)
class MintedSession:
    record: SdkSessionRecord
    # The token itself: shown once, only its peppered hash is kept.
    token: str


@dataclass(frozen=True)
class ResolvedSession:
    record: SdkSessionRecord
    origins: tuple[str, ...]
    # Set when an OAuth client minted it: the gateway checks the client is
    # still active (face-match's, which kyc-tier does not read).
    minted_by_oauth_client_id: str = ""


def _record(row: models.SdkSession) -> SdkSessionRecord:
    return same_named(SdkSessionRecord, row)


def _invalid() -> Unauthenticated:
    return Unauthenticated(
        "the SDK session token is unknown, revoked or expired", "SDK_SESSION_INVALID"
    )


def normalise_origin(value: str) -> str:
    """`scheme://host[:port]`, lower-case, without a default port (as a
    browser sends it in `Origin`); INVALID_FIELD for anything else
    (a path, a query, credentials, a wildcard, a scheme other than http(s))."""
    text = value.strip()
    refusal = invalid_field("origins", "each must be scheme://host[:port], e.g. https://a.example")
    try:
        # urlsplit itself refuses a bad bracketed host ("http://[::1", "https://[zz]").
        parsed = urllib.parse.urlsplit(text)
        port = parsed.port
    except ValueError:
        raise refusal from None
    if (
        parsed.scheme.lower() not in ("http", "https")
        or not parsed.hostname
        or parsed.path not in ("", "/")
        or parsed.query
        or parsed.fragment
        or parsed.username is not None
        or "*" in text
    ):
        raise refusal
    scheme = parsed.scheme.lower()
    # As browsers serialise an origin: no default port.
    default = {"http": 80, "https": 443}[scheme]
    host = parsed.hostname.lower()
    if ":" in host:  # an IPv6 literal keeps its brackets, as in `Origin`
        host = f"[{host}]"
    netloc = host + (f":{port}" if port not in (None, default) else "")
    return f"{scheme}://{netloc}"


class SdkSessions:
    """The rules, on one session (transaction) each."""

    def __init__(self, directory: PartnerDirectory, max_seconds: int):
        self._directory = directory
        self.max_seconds = max_seconds

    def create(
        self, session: Session, org_id: str, customer_id: str, ttl_seconds: int, actor: str
    ) -> MintedSession:
        if not 0 <= ttl_seconds <= self.max_seconds:
            raise invalid_field("ttl_seconds", f"must be 1 to {self.max_seconds} (0: the maximum)")
        customer = records.load_customer(session, org_id, customer_id)
        records.require_active(customer)
        token = (
            TOKEN_PREFIX + base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=").lower()
        )
        now = utcnow()
        row = models.SdkSession(
            session_id=records.new_id("sdks"),
            org_id=org_id,
            customer_id=customer.customer_id,
            token_hash=self._directory.hash_secret(token),
            created_by=actor[:128],
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds or self.max_seconds),
        )
        session.add(row)
        session.flush()
        outbox.record(
            session,
            org_id,
            "sdk_session.create",
            f"customer:{customer.customer_id}",
            "success",
            details={"session_id": row.session_id, "ttl_seconds": ttl_seconds or self.max_seconds},
        )
        return MintedSession(_record(row), token)

    def revoke(self, session: Session, org_id: str, session_id: str) -> SdkSessionRecord:
        if not session_id:
            raise invalid_field("session_id", "is required")
        row = owned(session, models.SdkSession, "session_id", session_id, org_id, for_update=True)
        if row is None:
            raise NotFound("no such SDK session in this organisation", "SDK_SESSION_NOT_FOUND")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            outbox.record(
                session,
                org_id,
                "sdk_session.revoke",
                f"customer:{row.customer_id}",
                "success",
                details={"session_id": row.session_id},
            )
        return _record(row)

    @staticmethod
    def list_for_customer(
        session: Session, org_id: str, customer_id: str, size: int, token: str
    ) -> Page[SdkSessionRecord]:
        """The customer's sessions, newest first; CUSTOMER_NOT_FOUND for
        another organisation's customer too."""
        records.load_customer(session, org_id, customer_id)
        query = select(models.SdkSession).where(
            models.SdkSession.org_id == org_id, models.SdkSession.customer_id == customer_id
        )
        page = newest_first(
            session, query, models.SdkSession.created_at, models.SdkSession.session_id, size, token
        )
        return Page([_record(row) for row in page.items], page.next_page_token)

    def authenticate(self, session: Session, token: str) -> ResolvedSession:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
            raise _invalid()
        row = session.scalar(
            select(models.SdkSession).where(
                models.SdkSession.token_hash == self._directory.hash_secret(token)
            )
        )
        if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
            raise _invalid()
        if minter_gone(session, row.created_by):
            raise _invalid()
        customer = session.get(models.Customer, row.customer_id)
        if customer is None or customer.status != "active":
            raise _invalid()
        kind, _, credential = row.created_by.partition(":")
        return ResolvedSession(
            _record(row),
            origins_of(session, row.org_id),
            credential if kind == context.OAUTH_CLIENT_KIND else "",
        )


def end_minted_by(session: Session, org_id: str, minter: str, now: datetime) -> int:
    """End the open sessions `minter` ("api_key:...", "console_user:...")
    minted, in the caller's transaction: its key is revoked or the user
    disabled. The number ended."""
    ended = session.execute(
        update(models.SdkSession)
        .where(
            models.SdkSession.org_id == org_id,
            models.SdkSession.created_by == minter,
            models.SdkSession.revoked_at.is_(None),
            models.SdkSession.expires_at > now,
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(ended, "rowcount", 0) or 0)


def minter_gone(session: Session, created_by: str) -> bool:
    """Whether the session was minted by an API key since revoked, or by a
    console user since disabled (or either gone). Revoking the key or
    disabling the user ends their sessions at once; this also stops those
    minted before that rule. A session minted by an OAuth client (face-match's)
    is checked by the gateway (ResolvedSession)."""
    kind, _, minter_id = created_by.partition(":")
    if kind == "api_key":
        key = session.get(models.ApiKey, minter_id)
        return key is None or key.revoked_at is not None
    if kind == "console_user":
        user = session.get(ConsoleUser, minter_id)
        return user is None or user.disabled_at is not None
    return False


def origins_of(session: Session, org_id: str) -> tuple[str, ...]:
    return tuple(
        session.scalars(
            select(models.SdkOrigin.origin)
            .where(models.SdkOrigin.org_id == org_id)
            .order_by(models.SdkOrigin.origin)
        )
    )


def set_origins(session: Session, org_id: str, origins: list[str]) -> tuple[str, ...]:
    """Replace the organisation's SDK origins; audited (`org.sdk_origins`)."""
    wanted = sorted({normalise_origin(o) for o in origins})
    if len(wanted) > MAX_ORIGINS:
        raise invalid_field("origins", f"at most {MAX_ORIGINS}")
    if session.get(models.Org, org_id, with_for_update=True) is None:
        raise invalid_field("org_id", "unknown organisation")
    old = origins_of(session, org_id)
    session.execute(delete(models.SdkOrigin).where(models.SdkOrigin.org_id == org_id))
    session.add_all(models.SdkOrigin(org_id=org_id, origin=o) for o in wanted)
    session.flush()
    outbox.record(
        session,
        org_id,
        "org.sdk_origins",
        f"org:{org_id}",
        "success",
        details={"old": ",".join(old), "new": ",".join(wanted)},
    )
    return tuple(wanted)


def origin_allowed(session: Session, origin: str) -> bool:
    """Whether any organisation lists `origin` (compared as sent: browsers
    send the serialised origin, lower-case scheme and host)."""
    if len(origin) > 255:
        return False
    found = session.scalar(
        select(models.SdkOrigin.org_id).where(models.SdkOrigin.origin == origin).limit(1)
    )
    return found is not None
