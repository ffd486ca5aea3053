"""Callback signing secrets and the records that audit callbacks.

Each organisation signs its callbacks with its own secret (`fm_callback_secrets`):

- an organisation new to Face Match gets a random 256-bit secret on its first
  submission, shown once in that CreateSubmission answer and stored sealed
  (AES-256-GCM under a key derived from FACE_MATCH_CALLBACK_SIGNING_KEY,
  bound to the organisation id);
- an organisation that had submissions before fm0006 keeps the secret derived
  from the service key, HMAC(FACE_MATCH_CALLBACK_SIGNING_KEY, org id), which
  its callbacks are signed with and which create still answers (what its
  partner already uses), until it first rotates;
- a rotation (RotateCallbackSecret) makes a new random secret, shown once,
  and keeps the previous one signing too for an overlap window: each
  signature header then carries one `sha256=` value per secret, as a webhook
  rotation does.

Audit records: a callback given up and one redelivered are audit-only rows
of `fm_transitions` (audit.audit_record; GetSubmission does not list them);
a secret rotation names no submission and is a row of `fm_audit_outbox`
(audit.record).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from identity_crypto import envelope
from identity_runtime import signing
from services.face_match import audit
from services.face_match.models import CallbackSecret

# The actor of what the relay does.
RELAY_ACTOR = "service:face-match"


def callback_secret(key: str, org_id: str) -> str:
    """The secret derived from the service's key: the organisation's until it
    first rotates (organisations that had submissions before fm0006)."""
    return hmac.new(
        key.encode(), f"face-match-callback\n{org_id}".encode(), hashlib.sha256
    ).hexdigest()


def _aad(org_id: str) -> bytes:
    return envelope.associated_data("fm_callback_secret", org_id=org_id)


class CallbackSecrets:
    """The organisations' callback signing secrets (sealed at rest)."""

    def __init__(self, service_key: str):
        self._service_key = service_key
        self._seal_key = hmac.new(
            service_key.encode(), b"face-match/callback-secret-seal/v1", hashlib.sha256
        ).digest()

    def __repr__(self) -> str:  # the keys stay out of logs
        return "CallbackSecrets()"

    def _seal(self, org_id: str, secret: str) -> bytes:
        return envelope.seal(self._seal_key, secret.encode(), _aad(org_id))

    def _open(self, org_id: str, sealed: bytes) -> bytes:
        return envelope.open_sealed(self._seal_key, sealed, _aad(org_id))

    def _current(self, org_id: str, row: CallbackSecret | None) -> bytes:
        if row is None or row.secret_sealed is None:
            return callback_secret(self._service_key, org_id).encode()
        return self._open(org_id, row.secret_sealed)

    def shown_on_create(self, session: Session, org_id: str, now: datetime) -> str:
        """What CreateSubmission answers: a new organisation's random secret
        (made now, shown this once), the derived secret of an organisation
        that has used it since before rotation existed (until it rotates),
        else "" (a secret is never shown twice)."""
        row = session.get(CallbackSecret, org_id)
        if row is None:
            secret = secrets.token_hex(32)
            session.add(
                CallbackSecret(
                    org_id=org_id, secret_sealed=self._seal(org_id, secret), created_at=now
                )
            )
            session.flush()
            return secret
        if row.secret_sealed is None:
            return callback_secret(self._service_key, org_id)
        return ""

    def signing(self, session: Session, org_id: str, now: datetime) -> list[bytes]:
        """The secrets a callback is signed with now: the current one, and the
        previous one while a rotation's overlap lasts."""
        row = session.get(CallbackSecret, org_id)
        found = [self._current(org_id, row)]
        if row is not None and row.previous_sealed is not None and row.previous_expires_at:
            expires = row.previous_expires_at
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=now.tzinfo)
            if now < expires:
                found.append(self._open(org_id, row.previous_sealed))
        return found

    def rotate(
        self, session: Session, org_id: str, actor: str, overlap_seconds: int, now: datetime
    ) -> tuple[str, datetime]:
        """A new secret (shown once) and when the previous one stops signing."""
        overlap = signing.rotation_overlap(overlap_seconds)
        secret = secrets.token_hex(32)
        row = session.get(CallbackSecret, org_id, with_for_update=True)
        previous = self._current(org_id, row).decode()
        if row is None:
            row = CallbackSecret(org_id=org_id, created_at=now)
            session.add(row)
        expires = now + timedelta(seconds=overlap)
        row.previous_sealed = self._seal(org_id, previous)
        row.previous_expires_at = expires
        row.secret_sealed = self._seal(org_id, secret)
        row.rotated_at = now
        audit.record(
            session,
            org_id,
            actor,
            "face_match.callback_secret_rotated",
            f"face_match_callback_secret:{org_id}",
            "success",
            now,
            {"overlap_seconds": str(overlap)},
        )
        return secret, expires
