"""An organisation's settings, changed by its internal-scope callers (REST or
gRPC) and by operators (`identity orgs ...`): the face-match threshold, the
Dukcapil evidence secret and the default webhook endpoint. Every change is
audited in its transaction (who, which setting; never a secret).

kyc-tier owns the settings (`orgs`); matching owns the model, so the
threshold's accepted range and calibrated false-match rate come from
matching (`Matcher.describe_threshold`), asked before a threshold is stored
and whenever one is shown.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity_runtime.errors import NotFound, invalid_field, require
from identity_store.types import utcnow
from services.kyc_tier import models, outbox, partners
from services.kyc_tier.pii import PiiVault
from services.kyc_tier.ports import Matcher, ThresholdInfo
from services.kyc_tier.store import Store

SECRET_MIN_BYTES = 32
SECRET_MAX_BYTES = 256
GENERATED_SECRET_BYTES = 32


@dataclass(frozen=True)
class MatchThreshold:
    info: ThresholdInfo
    # True when the organisation has no threshold of its own.
    is_default: bool


@dataclass(frozen=True)
class OrgSettings:
    org_id: str
    match_threshold: MatchThreshold
    dukcapil_evidence_secret_set: bool
    dukcapil_evidence_secret_updated_at: datetime | None
    default_webhook_id: str


@dataclass(frozen=True)
class _Stored:
    threshold: float | None
    secret_set: bool
    secret_updated_at: datetime | None
    default_webhook_id: str


def _org(session: Session, org_id: str, lock: bool = False) -> models.Org:
    org = session.get(models.Org, org_id, with_for_update=lock)
    if org is None:
        raise NotFound("no such organisation", "ORGANIZATION_NOT_FOUND")
    return org


def _stored(session: Session, org_id: str) -> _Stored:
    org = _org(session, org_id)
    return _Stored(
        org.match_threshold,
        org.evidence_secret_sealed is not None,
        org.evidence_secret_updated_at,
        org.default_webhook_id or "",
    )


def set_evidence_secret(
    session: Session, vault: PiiVault, org_id: str, secret: bytes | None, how: str
) -> None:
    """Store (or with None remove) the organisation's evidence secret; audited
    as `org.evidence_secret` with `how` ("set", "rotated", "cleared") only."""
    org = _org(session, org_id, lock=True)
    if secret is None:
        org.evidence_secret_sealed = None
    else:
        vault.store_org_secret(session, org, secret)
    org.evidence_secret_updated_at = utcnow()
    outbox.record(
        session, org_id, "org.evidence_secret", f"org:{org_id}", "success", details={"change": how}
    )


def check_secret(secret: bytes) -> bytes:
    require(
        SECRET_MIN_BYTES <= len(secret) <= SECRET_MAX_BYTES,
        "secret",
        f"must be {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} bytes",
    )
    return secret


def set_default_webhook(session: Session, org_id: str, webhook_id: str) -> None:
    """Name (or with "" clear) the organisation's default endpoint; audited."""
    org = _org(session, org_id, lock=True)
    if webhook_id:
        hook = session.get(models.Webhook, webhook_id)
        if hook is None or hook.org_id != org_id or hook.deleted_at is not None:
            raise NotFound("no such webhook", "WEBHOOK_NOT_FOUND")
    old = org.default_webhook_id or ""
    org.default_webhook_id = webhook_id or None
    outbox.record(
        session,
        org_id,
        "org.default_webhook",
        f"org:{org_id}",
        "success",
        details={"old": old or "none", "new": webhook_id or "none"},
    )


def default_webhook_id(session: Session, org_id: str) -> str:
    return (
        session.scalar(select(models.Org.default_webhook_id).where(models.Org.org_id == org_id))
        or ""
    )


@dataclass
class OrgSettingsFlow:
    store: Store
    vault: PiiVault
    matcher: Matcher

    async def get(self, org_id: str) -> OrgSettings:
        stored = await self.store.read(lambda s: _stored(s, org_id))
        return await self._settings(org_id, stored)

    async def _settings(self, org_id: str, stored: _Stored) -> OrgSettings:
        info = await self.matcher.describe_threshold(stored.threshold)
        return OrgSettings(
            org_id,
            MatchThreshold(info, stored.threshold is None),
            stored.secret_set,
            stored.secret_updated_at,
            stored.default_webhook_id,
        )

    async def set_match_threshold(
        self, org_id: str, threshold: float | None, use_default: bool
    ) -> OrgSettings:
        """Bounded by matching's accepted range (INVALID_FIELD "threshold")."""
        if use_default:
            require(threshold is None, "threshold", "must be unset with use_default")
        else:
            require(threshold is not None, "threshold", "is required (or use_default)")
            assert threshold is not None
            if not math.isfinite(threshold):
                raise invalid_field("threshold", "must be a finite number")
            # Refused here, before anything is written, when out of range.
            await self.matcher.describe_threshold(threshold)

        def work(session: Session) -> _Stored:
            try:
                partners.set_match_threshold(session, org_id, threshold)
            except LookupError:
                raise NotFound("no such organisation", "ORGANIZATION_NOT_FOUND") from None
            return _stored(session, org_id)

        return await self._settings(org_id, await self.store.write(work))

    async def set_evidence_secret(self, org_id: str, secret: bytes, clear: bool) -> OrgSettings:
        if clear:
            require(not secret, "secret", "must be empty with clear")
        else:
            check_secret(secret)

        def work(session: Session) -> _Stored:
            set_evidence_secret(
                session,
                self.vault,
                org_id,
                None if clear else secret,
                "cleared" if clear else "set",
            )
            return _stored(session, org_id)

        return await self._settings(org_id, await self.store.write(work))

    async def rotate_evidence_secret(self, org_id: str) -> tuple[OrgSettings, bytes]:
        """A new random secret, returned once (only its sealed form is kept)."""
        secret = secrets.token_bytes(GENERATED_SECRET_BYTES)

        def work(session: Session) -> _Stored:
            set_evidence_secret(session, self.vault, org_id, secret, "rotated")
            return _stored(session, org_id)

        return await self._settings(org_id, await self.store.write(work)), secret

    async def set_default_webhook(self, org_id: str, webhook_id: str) -> OrgSettings:
        def work(session: Session) -> _Stored:
            set_default_webhook(session, org_id, webhook_id)
            return _stored(session, org_id)

        return await self._settings(org_id, await self.store.write(work))
