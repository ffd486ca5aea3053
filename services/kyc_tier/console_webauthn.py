"""Helpers of the console's passkey ceremonies (console_passkeys.py): the
relying party, a credential's parsing, refusals and their audit entries."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from identity_runtime import context
from identity_runtime.errors import FailedPrecondition, Unauthenticated, invalid_field
from services.kyc_tier import outbox
from services.kyc_tier.console_users import ACTOR_PREFIX, console_user_id


@dataclass(frozen=True)
class RelyingParty:
    rp_id: str
    name: str
    origins: tuple[str, ...]
    challenge_seconds: float = 300.0


@dataclass(frozen=True)
class Ceremony:
    ceremony_id: str
    options_json: str


def refused(message: str = "the passkey could not be verified") -> Unauthenticated:
    return Unauthenticated(message, "PASSKEY_INVALID")


def parse_credential(credential_json: str) -> dict[str, Any]:
    if not credential_json or len(credential_json) > 64_000:
        raise invalid_field("credential_json", "must be the browser's credential as JSON")
    try:
        value = json.loads(credential_json)
        client_data = json.loads(b64(value["response"]["clientDataJSON"]))
        value["_challenge"] = str(client_data["challenge"])
        value["_id"] = str(value["id"])
        return dict(value)
    except (ValueError, KeyError, TypeError, RecursionError):
        # RecursionError: json.loads of deeply nested arrays ([[[...]]]).
        raise invalid_field("credential_json", "is not a WebAuthn credential") from None


def b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def session_user() -> str:
    user_id = console_user_id(context.actor())
    if not user_id:
        raise FailedPrecondition(
            "only a signed-in console user can add a passkey", "SESSION_REQUIRED"
        )
    return user_id


def audit_failure(session: Session, org_id: str, user_id: str, method: str) -> None:
    action = "console.passkey_register" if method == "register" else "console.login"
    outbox.record(
        session,
        org_id,
        action,
        f"console_user:{user_id}",
        "denied",
        details={"method": method},
        actor=ACTOR_PREFIX + user_id,
    )
