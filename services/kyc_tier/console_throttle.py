"""The console's password sign-in throttle: backoff, then lockout, per email
address, whether or not a console user has it.

Every password attempt that names an address goes through the same row of
`console_login_throttles`, keyed by a peppered HMAC of the normalised email
(the address itself is never stored), so a known and an unknown address get
the same answers for the same attempts: no account enumeration, and guessing
over made-up addresses is throttled too.

- After `backoff_after` failures in a row, each further attempt must wait
  `2^(n - backoff_after + 1)` seconds after the n-th failure (2, 4, 8 ...,
  at most `backoff_max_seconds`): RESOURCE_EXHAUSTED / RATE_LIMITED.
- The `max_failures`-th failure locks the address for `lockout_seconds`:
  RESOURCE_EXHAUSTED / ACCOUNT_LOCKED. Both carry `retry_after_seconds`.
- The count decays: a row is forgotten `lockout_seconds` after its last
  failure (and never before its lock ends); the retention sweep deletes it.
- A successful password sign-in clears the row. Passkey sign-in never
  consults it (a passkey cannot be guessed), so a lockout caused by someone
  else does not keep an analyst with a passkey out.

Concurrent failures count correctly: the row is created if missing
(INSERT ... ON CONFLICT DO NOTHING) and then locked (SELECT ... FOR UPDATE
on PostgreSQL; SQLite serialises write transactions) before it is changed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from identity_runtime.errors import ResourceExhausted
from identity_store.db import insert_missing
from services.kyc_tier.console_models import ConsoleLoginThrottle as Row


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    lockout_seconds: float = 900.0
    backoff_after: int = 2
    backoff_max_seconds: float = 30.0
    session_seconds: float = 8 * 3600.0


def _retry_after(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


class LoginThrottle:
    def __init__(self, pepper: bytes, policy: LoginPolicy):
        self._pepper = pepper
        self.policy = policy

    def digest(self, email: str) -> str:
        """The row key of a normalised email (a keyed hash: not reversible
        without the pepper, and not the session tokens' domain)."""
        return hmac.new(
            self._pepper, b"console-login:" + email.encode(), hashlib.sha256
        ).hexdigest()

    def refuse_while_throttled(
        self, session: Session, digest: str, now: datetime, lock: bool = False
    ) -> None:
        """RESOURCE_EXHAUSTED if the address must not try a password now."""
        statement = select(Row).where(Row.email_digest == digest)
        if lock:
            statement = statement.with_for_update()
        row = session.scalar(statement.execution_options(populate_existing=True))
        if row is None or row.expires_at <= now:
            return
        if row.locked_until is not None and row.locked_until > now:
            raise ResourceExhausted(
                "the account is locked after repeated failed sign-ins",
                "ACCOUNT_LOCKED",
                {"retry_after_seconds": _retry_after(row.locked_until, now)},
            )
        if row.next_login_at is not None and row.next_login_at > now:
            raise ResourceExhausted(
                "too many failed sign-ins; wait before trying again",
                "RATE_LIMITED",
                {"retry_after_seconds": _retry_after(row.next_login_at, now)},
            )

    def record_failure(self, session: Session, digest: str, now: datetime) -> dict[str, object]:
        """Count one failure; the audit details of it (no personal data)."""
        row = self._locked_row(session, digest, now)
        if row.expires_at <= now:  # decayed: start again
            row.failures = 0
            row.next_login_at = row.locked_until = None
        row.failures += 1
        policy = self.policy
        details: dict[str, object] = {"method": "password", "failures": row.failures}
        window = timedelta(seconds=policy.lockout_seconds)
        if row.failures >= policy.max_failures:
            row.locked_until = now + window
            row.failures = 0
            row.next_login_at = None
            details["locked"] = "true"
        elif row.failures >= policy.backoff_after:
            exponent = row.failures - policy.backoff_after + 1
            wait = min(2**exponent, policy.backoff_max_seconds)
            row.next_login_at = now + timedelta(seconds=wait)
        row.updated_at = now
        row.expires_at = max(now + window, row.locked_until or now)
        return details

    def clear(self, session: Session, digest: str) -> None:
        session.execute(delete(Row).where(Row.email_digest == digest))

    @staticmethod
    def _locked_row(session: Session, digest: str, now: datetime) -> Row:
        # Create the row if missing, tolerating a racing attempt, then lock it.
        fresh = {"failures": 0, "updated_at": now, "expires_at": now}
        insert_missing(session, Row, "email_digest", email_digest=digest, **fresh)
        row = session.scalar(
            select(Row)
            .where(Row.email_digest == digest)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert row is not None
        return row
