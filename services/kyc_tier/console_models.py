"""kyc-tier's tables for the analyst console: console users (per
organisation), their server-side sessions, passkeys and WebAuthn challenges,
each organisation's console policy, and the password sign-in throttle.

Passwords are argon2id hashes; session and CSRF tokens, and the emails the
throttle counts, are stored only as keyed hashes (HMAC-SHA256 under the
API-key pepper). Only kyc-tier reads them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from identity_store.declarative import ID
from identity_store.types import utcnow
from services.kyc_tier.models import Base, ExpiringGrantColumns


class ConsoleUser(Base):
    """An analyst or admin of one organisation; emails are unique across
    organisations (sign-in names no organisation)."""

    __tablename__ = "console_users"

    user_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"), index=True)
    # Lower-cased; personal data (never logged).
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[Any]] = mapped_column(default=list)
    # argon2id (PHC string); NULL for a passkey-only user.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # Unused since 0350_console_login_throttles (the throttle is per email
    # digest, ConsoleLoginThrottle); kept while a release that still reads
    # them is within MINIMUM_COMPATIBLE (rollback), then dropped by a
    # contract migration.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    next_login_at: Mapped[datetime | None] = mapped_column()
    locked_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column()


class ConsoleLoginThrottle(Base):
    """Password sign-in failures of one email address, known or not
    (console_throttle.py). Keyed by a peppered HMAC of the normalised email,
    never the email; the row is forgotten at `expires_at` (the retention
    sweep deletes it)."""

    __tablename__ = "console_login_throttles"

    email_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Failures in a row since the last lockout or successful sign-in.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # Backoff: no password attempt is checked before this.
    next_login_at: Mapped[datetime | None] = mapped_column()
    locked_until: Mapped[datetime | None] = mapped_column()
    # The last failure.
    updated_at: Mapped[datetime] = mapped_column()
    # The count is forgotten from then on (the lockout window after the last
    # failure, and never before the lock ends).
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ConsoleSession(ExpiringGrantColumns, Base):
    """A signed-in console session (server-side, expiring, revocable)."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_user", "user_id", "created_at"),)

    session_id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("console_users.user_id"))
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_hash: Mapped[str] = mapped_column(String(64))
    # "password" or "passkey".
    method: Mapped[str] = mapped_column(String(16))


class ConsolePasskey(Base):
    """A WebAuthn credential of a console user."""

    __tablename__ = "console_passkeys"

    passkey_id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("console_users.user_id"), index=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
    # base64url credential id.
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()


class ConsoleChallenge(Base):
    """A WebAuthn ceremony's challenge: single use, expiring."""

    __tablename__ = "console_challenges"

    ceremony_id: Mapped[str] = mapped_column(ID, primary_key=True)
    # "register" or "authenticate".
    purpose: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("console_users.user_id"))
    challenge: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class ConsolePolicy(Base):
    """An organisation's console policy (no row: the defaults)."""

    __tablename__ = "console_policies"

    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"), primary_key=True)
    passkey_required: Mapped[bool] = mapped_column(Boolean, default=False)


class CustomerSearchToken(Base):
    """The console's name and email search index: one row per normalised
    token (lower case, accents folded, split on anything not a letter or
    digit) of a customer's name and email. Personal data: deleted with the
    customer's name on erasure."""

    __tablename__ = "customer_search_tokens"
    __table_args__ = (Index("ix_customer_search_tokens_org_token", "org_id", "token"),)

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), primary_key=True)
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
