"""Console users of an organisation (issue 11): checked, stored with an
argon2id password hash (argon2-cffi's defaults, RFC 9106's second
recommended parameter set) and audited (`console_user.create`). Emails are
unique across organisations, since sign-in names no organisation."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from identity_runtime import context
from identity_runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    Unauthenticated,
    invalid_field,
)
from identity_store.types import utcnow
from services.kyc_tier import outbox
from services.kyc_tier.console_models import ConsolePasskey, ConsolePolicy, ConsoleSession
from services.kyc_tier.console_models import ConsoleUser as UserRow
from services.kyc_tier.models import Org
from services.kyc_tier.records import new_id
from services.kyc_tier.store import Store

ROLES = ("analyst", "admin")
ACTOR_PREFIX = "console_user:"
MIN_PASSWORD = 12
_HASHER = PasswordHasher()
# Verified against when the email is unknown, so both cost the same.
DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class ConsoleUserView:
    user_id: str
    email: str
    display_name: str
    org_id: str
    roles: tuple[str, ...]
    passkey_count: int
    disabled_at: datetime | None = None


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > 254 or " " in email:
        raise invalid_field("email", "must be an email address")
    return email


def user_view(session: Session, row: UserRow) -> ConsoleUserView:
    count = session.scalar(
        select(func.count())
        .select_from(ConsolePasskey)
        .where(ConsolePasskey.user_id == row.user_id)
    )
    return ConsoleUserView(
        row.user_id,
        row.email,
        row.display_name,
        row.org_id,
        tuple(row.roles),
        int(count or 0),
        row.disabled_at,
    )


@dataclass(frozen=True)
class NewUser:
    email: str
    display_name: str
    roles: tuple[str, ...]


def check_new_user(email: str, display_name: str, roles: tuple[str, ...], password: str) -> NewUser:
    """INVALID_FIELD naming the first bad field of a new user."""
    email = normalise_email(email)
    display_name = display_name.strip()
    if not 1 <= len(display_name) <= 200:
        raise invalid_field("display_name", "must be 1 to 200 characters")
    roles = tuple(sorted(set(roles))) or ("analyst",)
    if any(r not in ROLES for r in roles):
        raise invalid_field("roles", f"allowed roles: {', '.join(ROLES)}")
    if password and not MIN_PASSWORD <= len(password) <= 256:
        raise invalid_field("password", f"must be {MIN_PASSWORD} to 256 characters")
    return NewUser(email, display_name, roles)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def add_user(
    session: Session, org_id: str, new: NewUser, password_hash: str | None
) -> ConsoleUserView:
    """Insert the user (ALREADY_EXISTS / CONSOLE_USER_EXISTS for a taken
    email) and queue its audit entry in the caller's transaction."""
    if session.get(Org, org_id) is None:
        raise invalid_field("org_id", "unknown organisation")
    if session.scalar(select(UserRow.user_id).where(UserRow.email == new.email)):
        raise AlreadyExists("a console user has this email", "CONSOLE_USER_EXISTS")
    row = UserRow(
        user_id=new_id("usr"),
        org_id=org_id,
        email=new.email,
        display_name=new.display_name,
        roles=list(new.roles),
        password_hash=password_hash,
        failed_logins=0,
    )
    session.add(row)
    session.flush()
    outbox.record(
        session,
        org_id,
        "console_user.create",
        f"console_user:{row.user_id}",
        "success",
        details={"roles": ",".join(new.roles)},
    )
    return user_view(session, row)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def console_user_id(actor: str) -> str:
    """The console user an actor names ("" for an API key or a service)."""
    return actor.removeprefix(ACTOR_PREFIX) if actor.startswith(ACTOR_PREFIX) else ""


class ConsoleUsers:
    """The console users of an organisation, as the API manages them."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.clock = clock

    async def create_user(
        self, org_id: str, email: str, display_name: str, roles: tuple[str, ...], password: str
    ) -> ConsoleUserView:
        """A new console user of `org_id` (audited `console_user.create`)."""
        checked = check_new_user(email, display_name, roles, password)
        hashed = await asyncio.to_thread(hash_password, password) if password else None
        return await self.store.write(lambda s: add_user(s, org_id, checked, hashed))

    async def me(self, org_id: str) -> ConsoleUserView:
        user_id = console_user_id(context.actor())
        if not user_id:
            raise FailedPrecondition("an API key has no console user", "SESSION_REQUIRED")

        def work(session: Session) -> ConsoleUserView:
            row = session.get(UserRow, user_id)
            if row is None or row.org_id != org_id or row.disabled_at is not None:
                raise Unauthenticated("the session's user is gone", "SESSION_INVALID")
            return user_view(session, row)

        return await self.store.read(work)

    async def set_policy(self, org_id: str, passkey_required: bool) -> bool:
        """The organisation's console policy (audited `console.policy`). Admins
        only, as the RPC declares (console_roles.py). Requiring passkeys ends
        the organisation's sessions opened with a password, in the same
        transaction."""
        now = self.clock()

        def work(session: Session) -> bool:
            policy = session.get(ConsolePolicy, org_id, with_for_update=True)
            if policy is None:
                policy = ConsolePolicy(org_id=org_id, passkey_required=passkey_required)
                session.add(policy)
            policy.passkey_required = passkey_required
            details = {"passkey_required": str(passkey_required).lower()}
            if passkey_required:
                ended = session.execute(
                    update(ConsoleSession)
                    .where(
                        ConsoleSession.org_id == org_id,
                        ConsoleSession.method == "password",
                        ConsoleSession.revoked_at.is_(None),
                    )
                    .values(revoked_at=now)
                    .execution_options(synchronize_session=False)
                )
                details["password_sessions_revoked"] = str(int(getattr(ended, "rowcount", 0) or 0))
            outbox.record(
                session, org_id, "console.policy", f"org:{org_id}", "success", details=details
            )
            return passkey_required

        return await self.store.write(work)
