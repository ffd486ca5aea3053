"""Partner organisations and their API keys.

Keys look like `idk_<32 base32 characters>`; only a peppered HMAC-SHA256 of
the whole key is stored, with its first characters as a recognisable prefix.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from identity_runtime import context
from identity_runtime.convert import same_named
from identity_runtime.errors import NotFound, Unauthenticated, invalid_field
from identity_store.types import utcnow
from services.kyc_tier import models, outbox, sdk_sessions
from services.kyc_tier.org_rows import owned
from services.kyc_tier.pii import PiiVault
from services.kyc_tier.records import new_id

KEY_PREFIX = "idk_"
SCOPES = ("public", "internal")
# last_used_at is refreshed at most this often, so authentication is not a
# write on every request.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class ApiKeyRecord:
    api_key_id: str
    org_id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class Caller:
    org_id: str
    api_key_id: str
    scopes: tuple[str, ...]


def _record(row: models.ApiKey) -> ApiKeyRecord:
    return same_named(ApiKeyRecord, row, scopes=tuple(row.scopes))


def create_org(session: Session, name: str, org_id: str | None = None) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise invalid_field("name", "must be 1 to 200 characters")
    if org_id is not None and not context.is_org_id(org_id):
        # What every service would refuse in a caller token (TENANT_MISSING).
        raise invalid_field(
            "org_id", f"must be 1 to {context.ORG_ID_MAX} letters, digits, '_' or '-'"
        )
    org = models.Org(org_id=org_id or new_id("org"), name=name)
    session.add(org)
    session.flush()
    return org.org_id


def match_threshold(session: Session, org_id: str) -> float | None:
    """The organisation's face-match threshold; None leaves matching's default."""
    return session.scalar(select(models.Org.match_threshold).where(models.Org.org_id == org_id))


def set_match_threshold(
    session: Session, org_id: str, threshold: float | None
) -> tuple[float | None, float | None]:
    """Switch the organisation's face-match threshold (None: matching's default),
    effective on its next request, no redeploy; audited (`org.match_threshold`)
    in the same transaction. (old, new); LookupError for an unknown organisation."""
    if threshold is not None and not (0.0 < threshold < 1.0):
        raise invalid_field("match_threshold", "must be a cosine strictly between 0 and 1")
    org = session.get(models.Org, org_id, with_for_update=True)
    if org is None:
        raise LookupError(org_id)
    old = org.match_threshold
    org.match_threshold = threshold
    outbox.record(
        session,
        org_id,
        "org.match_threshold",
        f"org:{org_id}",
        "success",
        details={
            "old": "default" if old is None else old,
            "new": "default" if threshold is None else threshold,
        },
    )
    return old, threshold


def evidence_secret(session: Session, vault: PiiVault, org_id: str) -> bytes | None:
    """The key the organisation signs Dukcapil evidence with; None when it has none."""
    org = session.get(models.Org, org_id)
    if org is None or org.evidence_secret_sealed is None:
        return None
    return vault.open_org_secret(session, org)


class PartnerDirectory:
    def __init__(self, pepper: str):
        self._pepper = pepper.encode()

    def hash_secret(self, secret: str) -> str:
        return hmac.new(self._pepper, secret.encode(), hashlib.sha256).hexdigest()

    def create_api_key(
        self, session: Session, org_id: str, name: str, scopes: tuple[str, ...]
    ) -> tuple[ApiKeyRecord, str]:
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise invalid_field("name", "must be 1 to 200 characters")
        if not scopes:
            scopes = ("public",)
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown:
            raise invalid_field("scopes", f"unknown scope; allowed: {', '.join(SCOPES)}")
        if session.get(models.Org, org_id) is None:
            raise invalid_field("org_id", "unknown organisation")
        secret = KEY_PREFIX + base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=").lower()
        row = models.ApiKey(
            api_key_id=new_id("key"),
            org_id=org_id,
            name=name,
            prefix=secret[:12],
            secret_hash=self.hash_secret(secret),
            scopes=sorted(set(scopes)),
        )
        session.add(row)
        session.flush()
        outbox.record(
            session,
            org_id,
            "api_key.create",
            f"api_key:{row.api_key_id}",
            "success",
            details={"scopes": ",".join(row.scopes)},
        )
        return _record(row), secret

    def revoke_api_key(self, session: Session, org_id: str, api_key_id: str) -> ApiKeyRecord:
        """Revoke the organisation's key (a revoked key is answered unchanged)
        and, in the same transaction, the open SDK sessions it minted: a key is
        revoked because it leaked, and its sessions would be the thief's.
        Audited, with the number of sessions ended."""
        row = owned(session, models.ApiKey, "api_key_id", api_key_id, org_id, for_update=True)
        if row is None:
            raise NotFound("no such API key in this organisation", "API_KEY_NOT_FOUND")
        if row.revoked_at is None:
            now = utcnow()
            row.revoked_at = now
            ended = sdk_sessions.end_minted_by(session, org_id, f"api_key:{row.api_key_id}", now)
            outbox.record(
                session,
                org_id,
                "api_key.revoke",
                f"api_key:{row.api_key_id}",
                "success",
                details={"sdk_sessions_revoked": ended},
            )
        return _record(row)

    @staticmethod
    def revocation_epoch(session: Session) -> int:
        """Grows with every revocation (revocations are never undone)."""
        return int(
            session.scalar(
                select(func.count())
                .select_from(models.ApiKey)
                .where(models.ApiKey.revoked_at.is_not(None))
            )
            or 0
        )

    def list_api_keys(self, session: Session, org_id: str) -> list[ApiKeyRecord]:
        rows = session.scalars(
            select(models.ApiKey)
            .where(models.ApiKey.org_id == org_id)
            .order_by(models.ApiKey.created_at.desc())
        )
        return [_record(r) for r in rows]

    def authenticate(self, session: Session, secret: str) -> Caller:
        if not secret.startswith(KEY_PREFIX) or len(secret) > 100:
            raise Unauthenticated("the API key is malformed", "API_KEY_INVALID")
        row = session.scalar(
            select(models.ApiKey).where(models.ApiKey.secret_hash == self.hash_secret(secret))
        )
        if row is None or row.revoked_at is not None:
            raise Unauthenticated("the API key is unknown or revoked", "API_KEY_INVALID")
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > _LAST_USED_RESOLUTION:
            # The first use in each minute is audited (not every request).
            row.last_used_at = now
            outbox.record(
                session,
                row.org_id,
                "api_key.use",
                f"api_key:{row.api_key_id}",
                "success",
                actor=f"api_key:{row.api_key_id}",
            )
        return Caller(org_id=row.org_id, api_key_id=row.api_key_id, scopes=tuple(row.scopes))
