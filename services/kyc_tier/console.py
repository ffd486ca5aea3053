"""Console users, password sign-in and server-side sessions (issue 11).

- Users (console_users.py) belong to one organisation, with roles
  `analyst` and/or `admin`; passwords are argon2id hashes.
- Password sign-in is throttled per email address, known or not
  (console_throttle.py): after `backoff_after` (2) failures in a row each
  further attempt must wait 2, 4, 8 ... seconds (capped), and the
  `max_failures`-th (5th) failure locks the address for `lockout_seconds`
  (RESOURCE_EXHAUSTED / RATE_LIMITED or ACCOUNT_LOCKED, with
  `retry_after_seconds`). A known and an unknown email get the same answers
  for the same attempts, and cost the same hash verification. A passkey
  sign-in is not held back by the throttle; a password sign-in clears it.
  In an organisation that requires passkeys, a password sign-in fails like
  a wrong password whatever the password (the hash is still verified, so it
  costs the same), and counts towards the throttle: the answer tells
  nothing about the password.
  Every sign-in of a console user, success or failure, is audited under
  the user (`console.login`).
- A session is a random token (`ics_...`) and a CSRF token, both stored as
  peppered HMACs only; it expires after `session_seconds` and is revoked by
  logout. The gateway resolves the cookie with `authenticate`; analyst
  actions then run as actor `console_user:<user_id>`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity_runtime import context
from identity_runtime.errors import (
    DomainError,
    FailedPrecondition,
    PermissionDenied,
    Unauthenticated,
)
from services.kyc_tier import outbox
from services.kyc_tier.console_models import ConsolePolicy, ConsoleSession
from services.kyc_tier.console_models import ConsoleUser as UserRow
from services.kyc_tier.console_throttle import LoginPolicy as LoginPolicy  # re-exported
from services.kyc_tier.console_throttle import LoginThrottle
from services.kyc_tier.console_users import (
    ACTOR_PREFIX,
    DUMMY_HASH,
    ConsoleUserView,
    console_user_id,
    normalise_email,
    user_view,
    verify_password,
)
from services.kyc_tier.records import new_id
from services.kyc_tier.store import Store

SESSION_PREFIX = "ics_"


@dataclass(frozen=True)
class OpenedSession:
    token: str
    csrf_token: str
    expires_at: datetime
    user: ConsoleUserView


@dataclass(frozen=True)
class SessionCaller:
    org_id: str
    user_id: str
    session_id: str
    roles: tuple[str, ...]


def passkey_required(session: Session, org_id: str) -> bool:
    policy = session.get(ConsolePolicy, org_id)
    return bool(policy and policy.passkey_required)


class ConsoleAuth:
    def __init__(
        self,
        store: Store,
        pepper: str,
        policy: LoginPolicy,
        clock: Callable[[], datetime],
    ):
        self.store = store
        self._pepper = pepper.encode()
        self.policy = policy
        self.clock = clock
        self.throttle = LoginThrottle(self._pepper, policy)

    def digest(self, token: str) -> str:
        return hmac.new(self._pepper, b"console:" + token.encode(), hashlib.sha256).hexdigest()

    # --- password sign-in ----------------------------------------------------

    async def login(self, email: str, password: str) -> OpenedSession:
        if not email or not password or len(password) > 256:
            raise Unauthenticated("wrong email or password", "CREDENTIALS_INVALID")
        try:
            email = normalise_email(email)
        except DomainError:
            raise Unauthenticated("wrong email or password", "CREDENTIALS_INVALID") from None
        now = self.clock()
        key = self.throttle.digest(email)

        def look_up(session: Session) -> tuple[UserRow | None, bool]:
            # The same throttle whether or not the email is a user's.
            self.throttle.refuse_while_throttled(session, key, now)
            row = session.scalar(select(UserRow).where(UserRow.email == email))
            return row, row is not None and passkey_required(session, row.org_id)

        row, passkey_only = await self.store.read(look_up)
        stored = row.password_hash if row is not None and row.password_hash else DUMMY_HASH
        # Verified whatever the policy, so every answer costs the same.
        good = await asyncio.to_thread(verify_password, stored, password)
        usable = row is not None and row.password_hash is not None and row.disabled_at is None
        # A passkey-only organisation's user fails like a wrong password, right
        # or wrong (no password oracle), and counts towards the throttle.
        if row is None or not usable or not good or passkey_only:
            audited = (row.org_id, row.user_id) if row is not None else None
            disabled = row is not None and row.disabled_at is not None
            await self.store.write(lambda s: self._record_failure(s, key, audited, now, disabled))
            raise Unauthenticated("wrong email or password", "CREDENTIALS_INVALID")
        user_id = row.user_id
        return await self.store.write(lambda s: self._open_after_password(s, key, user_id, now))

    def _record_failure(
        self,
        session: Session,
        key: str,
        user: tuple[str, str] | None,
        now: datetime,
        disabled: bool = False,
    ) -> None:
        details = self.throttle.record_failure(session, key, now)
        if user is None:
            # An unknown email has no organisation to audit under: only the
            # throttle counts its failures.
            return
        if disabled:
            # An off-boarded user trying to sign in, right password or wrong.
            details = {**details, "user_disabled": "true"}
        org_id, user_id = user
        outbox.record(
            session,
            org_id,
            "console.login",
            f"console_user:{user_id}",
            "denied",
            details=details,
            actor=ACTOR_PREFIX + user_id,
        )

    def _open_after_password(
        self, session: Session, key: str, user_id: str, now: datetime
    ) -> OpenedSession:
        # Again under the row lock: a concurrent failure may have locked it.
        self.throttle.refuse_while_throttled(session, key, now, lock=True)
        row = session.get(UserRow, user_id, with_for_update=True)
        assert row is not None
        if passkey_required(session, row.org_id):
            # The policy was turned on since the look-up: as a wrong password.
            raise Unauthenticated("wrong email or password", "CREDENTIALS_INVALID")
        self.throttle.clear(session, key)
        return self.open_session(session, row, "password", now)

    def open_session(
        self, session: Session, row: UserRow, method: str, now: datetime
    ) -> OpenedSession:
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        expires_at = now + timedelta(seconds=self.policy.session_seconds)
        opened = ConsoleSession(
            session_id=new_id("ses"),
            user_id=row.user_id,
            org_id=row.org_id,
            token_hash=self.digest(token),
            csrf_hash=self.digest(csrf),
            method=method,
            created_at=now,
            expires_at=expires_at,
        )
        session.add(opened)
        session.flush()
        outbox.record(
            session,
            row.org_id,
            "console.login",
            f"console_user:{row.user_id}",
            "success",
            details={"method": method, "session_id": opened.session_id},
            actor=ACTOR_PREFIX + row.user_id,
        )
        return OpenedSession(token, csrf, expires_at, user_view(session, row))

    # --- sessions -----------------------------------------------------------

    async def authenticate(self, token: str, check_csrf: bool, csrf_token: str) -> SessionCaller:
        if not token.startswith(SESSION_PREFIX) or len(token) > 100:
            raise Unauthenticated("the session is unknown or has ended", "SESSION_INVALID")
        now = self.clock()

        def work(session: Session) -> SessionCaller:
            row = session.scalar(
                select(ConsoleSession).where(ConsoleSession.token_hash == self.digest(token))
            )
            if row is None or row.revoked_at is not None or row.expires_at <= now:
                raise Unauthenticated("the session is unknown or has ended", "SESSION_INVALID")
            user = session.get(UserRow, row.user_id)
            if user is None or user.disabled_at is not None:
                raise Unauthenticated("the session is unknown or has ended", "SESSION_INVALID")
            if check_csrf and not hmac.compare_digest(self.digest(csrf_token), row.csrf_hash):
                raise PermissionDenied(
                    "send the session's CSRF token as X-CSRF-Token", "CSRF_INVALID"
                )
            return SessionCaller(row.org_id, row.user_id, row.session_id, tuple(user.roles))

        return await self.store.read(work)

    async def logout(self, org_id: str, token: str) -> None:
        """End the caller's own session (audited `console.logout`)."""
        user_id = console_user_id(context.actor())
        if not user_id or not token:
            raise FailedPrecondition("only a console session can be ended", "SESSION_REQUIRED")
        now = self.clock()

        def work(session: Session) -> None:
            row = session.scalar(
                select(ConsoleSession)
                .where(ConsoleSession.token_hash == self.digest(token))
                .with_for_update()
            )
            if row is None or row.user_id != user_id or row.org_id != org_id:
                raise Unauthenticated("the session is unknown or has ended", "SESSION_INVALID")
            if row.revoked_at is None:
                row.revoked_at = now
                outbox.record(
                    session,
                    org_id,
                    "console.logout",
                    f"console_user:{user_id}",
                    "success",
                    details={"session_id": row.session_id},
                )

        await self.store.write(work)
