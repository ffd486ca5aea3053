"""Passkeys (WebAuthn) for the analyst console, with py_webauthn.

- The relying party is configured: `KYC_TIER_WEBAUTHN_RP_ID` (the console's
  host name) and `KYC_TIER_WEBAUTHN_ORIGINS` (comma-separated origins the
  browser may report, e.g. `https://console.bank.example`).
- Every ceremony has its own random challenge, stored server-side, usable
  once (it is spent by the first finish that names it, whatever the outcome)
  and expiring after `challenge_seconds`.
- User verification is required on registration and sign-in (a PIN or a
  biometric on the authenticator, not mere presence); discoverable
  credentials are asked for, so sign-in needs no email.
- Sign counters are checked: an assertion whose counter does not grow
  (a cloned authenticator, a replay) is refused, and the stored counter is
  advanced only if it is still the one verified against.
- Registration needs a signed-in session (the user adds a passkey to their
  own account); sign-in opens a session exactly as a password does, and is
  the only way in when the organisation requires passkeys.
Refusals are UNAUTHENTICATED / PASSKEY_INVALID (a failed ceremony) and are
audited under the user when the credential names one.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

import webauthn
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session
from webauthn.helpers import bytes_to_base64url, structs
from webauthn.helpers.exceptions import WebAuthnException

from identity_runtime.errors import FailedPrecondition, Unauthenticated, invalid_field
from services.kyc_tier import outbox
from services.kyc_tier.console import ConsoleAuth, OpenedSession
from services.kyc_tier.console_models import ConsoleChallenge, ConsolePasskey
from services.kyc_tier.console_models import ConsoleUser as UserRow
from services.kyc_tier.console_users import normalise_email
from services.kyc_tier.console_webauthn import (
    Ceremony,
    RelyingParty,
    audit_failure,
    b64,
    parse_credential,
    refused,
    session_user,
)
from services.kyc_tier.records import new_id
from services.kyc_tier.store import Store

_REQUIRED = structs.UserVerificationRequirement.REQUIRED
# What py_webauthn's verify functions return (registration or authentication).
Verified = TypeVar("Verified")


class Ceremonies:
    """Challenges: issued per ceremony, spent once, expiring."""

    def __init__(
        self, store: Store, auth: ConsoleAuth, rp: RelyingParty, clock: Callable[[], datetime]
    ):
        self.store = store
        self.auth = auth
        self.rp = rp
        self.clock = clock

    def _challenge(self, session: Session, purpose: str, user_id: str | None) -> ConsoleChallenge:
        row = ConsoleChallenge(
            ceremony_id=new_id("cer"),
            purpose=purpose,
            user_id=user_id,
            challenge=bytes_to_base64url(secrets.token_bytes(32)),
            expires_at=self.clock() + timedelta(seconds=self.rp.challenge_seconds),
        )
        session.add(row)
        session.flush()
        return row

    def _spend(self, row: ConsoleChallenge | None, purpose: str) -> ConsoleChallenge:
        """The challenge, now spent; PASSKEY_INVALID if unknown, spent or expired."""
        if row is None or row.purpose != purpose or row.used_at is not None:
            raise refused("the ceremony is unknown or was already used")
        row.used_at = self.clock()
        if row.expires_at <= self.clock():
            raise refused("the ceremony expired: begin again")
        return row

    async def _verified(
        self,
        verify: Callable[..., Verified],
        credential_json: str,
        challenge: str,
        failure: tuple[str, str, str],
        **expected: Any,
    ) -> Verified:
        """py_webauthn's `verify` (registration or authentication), off the
        event loop, against this relying party, the spent challenge and user
        verification; `expected` adds the stored credential for a sign-in.
        A failed ceremony is audited (`failure`: org, user, method) and refused."""
        try:
            return await asyncio.to_thread(
                verify,
                credential=credential_json,
                expected_challenge=b64(challenge),
                expected_rp_id=self.rp.rp_id,
                expected_origin=list(self.rp.origins),
                require_user_verification=True,
                **expected,
            )
        except WebAuthnException:
            await self.store.write(lambda s: audit_failure(s, *failure))
            raise refused() from None


class PasskeyRegistration(Ceremonies):
    """A signed-in user adds a passkey."""

    async def begin_registration(self, org_id: str) -> str:
        user_id = session_user()

        def work(session: Session) -> str:
            user = session.get(UserRow, user_id)
            if user is None or user.org_id != org_id:
                raise Unauthenticated("the session's user is gone", "SESSION_INVALID")
            existing = session.scalars(
                select(ConsolePasskey.credential_id).where(ConsolePasskey.user_id == user_id)
            )
            row = self._challenge(session, "register", user_id)
            options = webauthn.generate_registration_options(
                rp_id=self.rp.rp_id,
                rp_name=self.rp.name,
                user_id=user_id.encode(),
                user_name=user.email,
                user_display_name=user.display_name,
                challenge=b64(row.challenge),
                authenticator_selection=structs.AuthenticatorSelectionCriteria(
                    resident_key=structs.ResidentKeyRequirement.REQUIRED,
                    user_verification=_REQUIRED,
                ),
                exclude_credentials=[
                    structs.PublicKeyCredentialDescriptor(id=b64(c)) for c in existing
                ],
            )
            return webauthn.options_to_json(options)

        return await self.store.write(work, audited=False)

    async def finish_registration(self, org_id: str, credential_json: str, name: str) -> str:
        user_id = session_user()
        credential = parse_credential(credential_json)
        name = name.strip() or "passkey"
        if len(name) > 100:
            raise invalid_field("passkey_name", "must be at most 100 characters")

        def spend(session: Session) -> str:
            row = session.scalar(
                select(ConsoleChallenge)
                .where(
                    ConsoleChallenge.user_id == user_id,
                    ConsoleChallenge.challenge == credential["_challenge"],
                )
                .with_for_update()
            )
            return self._spend(row, "register").challenge

        challenge = await self.store.write(spend, audited=False)
        verified = await self._verified(
            webauthn.verify_registration_response,
            credential_json,
            challenge,
            (org_id, user_id, "register"),
        )

        def store(session: Session) -> str:
            credential_id = bytes_to_base64url(verified.credential_id)
            if session.scalar(
                select(ConsolePasskey.passkey_id).where(
                    ConsolePasskey.credential_id == credential_id
                )
            ):
                raise FailedPrecondition("this passkey is already registered", "PASSKEY_EXISTS")
            row = ConsolePasskey(
                passkey_id=new_id("pky"),
                user_id=user_id,
                org_id=org_id,
                credential_id=credential_id,
                public_key=verified.credential_public_key,
                sign_count=verified.sign_count,
                name=name,
            )
            session.add(row)
            session.flush()
            outbox.record(
                session,
                org_id,
                "console.passkey_register",
                f"console_user:{user_id}",
                "success",
                details={"passkey_id": row.passkey_id},
            )
            return row.passkey_id

        return await self.store.write(store)


class Passkeys(PasskeyRegistration):
    """Registration, and sign-in with a passkey."""

    async def begin_authentication(self, email: str) -> Ceremony:
        """Options that never list credentials, known email or not: the
        passkeys are discoverable (registered with a resident key), and a
        list would tell anyone which emails are console users. A known
        email still binds the ceremony to its user (finish refuses another
        user's passkey), which the answer does not show."""
        email = normalise_email(email) if email.strip() else ""

        def work(session: Session) -> Ceremony:
            user = session.scalar(select(UserRow).where(UserRow.email == email)) if email else None
            row = self._challenge(session, "authenticate", user.user_id if user else None)
            options = webauthn.generate_authentication_options(
                rp_id=self.rp.rp_id, challenge=b64(row.challenge), user_verification=_REQUIRED
            )
            return Ceremony(row.ceremony_id, webauthn.options_to_json(options))

        return await self.store.write(work, audited=False)

    async def finish_authentication(self, ceremony_id: str, credential_json: str) -> OpenedSession:
        if not ceremony_id:
            raise invalid_field("ceremony_id", "is required")
        credential = parse_credential(credential_json)

        def spend(session: Session) -> tuple[str, ConsolePasskey | None]:
            row = session.get(ConsoleChallenge, ceremony_id, with_for_update=True)
            challenge = self._spend(row, "authenticate")
            passkey = session.scalar(
                select(ConsolePasskey).where(ConsolePasskey.credential_id == credential["_id"])
            )
            if passkey is not None and challenge.user_id not in (None, passkey.user_id):
                passkey = None
            if passkey is not None:
                session.expunge(passkey)
            return challenge.challenge, passkey

        challenge, passkey = await self.store.write(spend, audited=False)
        if passkey is None:
            raise refused()
        verified = await self._verified(
            webauthn.verify_authentication_response,
            credential_json,
            challenge,
            (passkey.org_id, passkey.user_id, "passkey"),
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
        )

        def open_session(session: Session) -> OpenedSession:
            advanced = cast(
                CursorResult[Any],
                session.execute(
                    update(ConsolePasskey)
                    .where(
                        ConsolePasskey.passkey_id == passkey.passkey_id,
                        ConsolePasskey.sign_count == passkey.sign_count,
                    )
                    .values(sign_count=verified.new_sign_count, last_used_at=self.clock())
                ),
            )
            user = session.get(UserRow, passkey.user_id, with_for_update=True)
            if advanced.rowcount != 1 or user is None or user.disabled_at is not None:
                raise refused()
            return self.auth.open_session(session, user, "passkey", self.clock())

        return await self.store.write(open_session)
