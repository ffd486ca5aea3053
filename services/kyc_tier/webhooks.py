"""Partner webhook endpoints: registered, listed, tested, rotated, disabled
and enabled per organisation (each audited).

Each endpoint has its own signing secret, generated here, shown once in the
create (or rotate) response and kept sealed (AES-256-GCM under the
organisation's "webhook" data key, bound to the endpoint id). A rotation
keeps the previous secret signing too for an overlap window. Where targets
may be and how a delivery is sent: webhook_targets; the events' outbox and
its dispatcher: webhook_outbox; the delivery log: webhook_log.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity_crypto import envelope
from identity_crypto.datakeys import DataKeyStore
from identity_runtime import signing
from identity_runtime.errors import NotFound, require
from identity_store.types import utcnow
from services.kyc_tier import models, outbox
from services.kyc_tier.org_settings import default_webhook_id
from services.kyc_tier.store import Store
from services.kyc_tier.webhook_outbox import give_up_pending
from services.kyc_tier.webhook_targets import (
    TEST_EVENT,
    DeliveryResult,
    Sender,
    check_events,
    check_url,
    event_document,
)

WEBHOOK_PURPOSE = "webhook"
MAX_WEBHOOKS_PER_ORG = 20
MAX_DESCRIPTION_LENGTH = 500
SECRET_PREFIX = "whsec_"


def owned(session: Session, org_id: str, webhook_id: str) -> models.Webhook:
    """The organisation's endpoint, else NOT_FOUND (another's is not found either)."""
    require(bool(webhook_id), "webhook_id", "is required")
    row = session.get(models.Webhook, webhook_id)
    if row is None or row.org_id != org_id or row.deleted_at is not None:
        raise NotFound("no such webhook", "WEBHOOK_NOT_FOUND")
    return row


@dataclass(frozen=True)
class WebhookRecord:
    webhook_id: str
    url: str
    events: tuple[str, ...]
    active: bool
    description: str
    created_at: datetime
    disabled_at: datetime | None = None
    # Disabled by a run of failed deliveries (not by a person).
    auto_disabled: bool = False
    # The organisation's default endpoint.
    is_default: bool = False


@dataclass(frozen=True)
class CreatedWebhook:
    webhook: WebhookRecord
    # Shown once; only its sealed form is kept.
    signing_secret: str


def webhook_record(row: models.Webhook, default_id: str = "") -> WebhookRecord:
    return WebhookRecord(
        row.webhook_id,
        row.url,
        tuple(row.events),
        row.active,
        row.description,
        row.created_at,
        None if row.active else row.disabled_at,
        not row.active and row.disabled_reason == "failures",
        bool(default_id) and row.webhook_id == default_id,
    )


def _record(session: Session, row: models.Webhook) -> WebhookRecord:
    return webhook_record(row, default_webhook_id(session, row.org_id))


def _aad(org_id: str, webhook_id: str) -> bytes:
    return envelope.associated_data("webhook_secret", org_id=org_id, webhook_id=webhook_id)


@dataclass
class WebhookFlow:
    store: Store
    keys: DataKeyStore
    sender: Sender

    @property
    def allow_loopback(self) -> bool:
        return self.sender.allow_loopback

    async def list(self, org_id: str) -> list[WebhookRecord]:
        def work(session: Session) -> list[WebhookRecord]:
            rows = session.scalars(
                select(models.Webhook)
                .where(models.Webhook.org_id == org_id, models.Webhook.deleted_at.is_(None))
                .order_by(models.Webhook.created_at, models.Webhook.webhook_id)
            )
            default_id = default_webhook_id(session, org_id)
            return [webhook_record(r, default_id) for r in rows]

        return await self.store.read(work)

    async def create(
        self, org_id: str, url: str, events: Iterable[str], description: str
    ) -> CreatedWebhook:
        url = check_url(url.strip(), self.allow_loopback)
        chosen = check_events(events)
        require(
            len(description) <= MAX_DESCRIPTION_LENGTH,
            "description",
            f"must be at most {MAX_DESCRIPTION_LENGTH} characters",
        )
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)

        def work(session: Session) -> WebhookRecord:
            count = len(
                list(
                    session.scalars(
                        select(models.Webhook.webhook_id).where(models.Webhook.org_id == org_id)
                    )
                )
            )
            require(
                count < MAX_WEBHOOKS_PER_ORG,
                "url",
                f"an organisation may register at most {MAX_WEBHOOKS_PER_ORG} endpoints",
            )
            webhook_id = f"whk_{uuid.uuid4().hex}"
            row = models.Webhook(
                webhook_id=webhook_id,
                org_id=org_id,
                url=url,
                events=chosen,
                secret_sealed=self._seal(session, org_id, webhook_id, secret),
                active=True,
                description=description,
                created_at=utcnow(),
            )
            session.add(row)
            outbox.record(
                session,
                org_id,
                "webhook.create",
                f"webhook:{webhook_id}",
                "success",
                details={"events": ",".join(chosen)},
            )
            session.flush()
            return _record(session, row)

        return CreatedWebhook(await self.store.write(work), secret)

    def _seal(self, session: Session, org_id: str, webhook_id: str, secret: str) -> bytes:
        key = self.keys.customer_key(session, org_id, None, WEBHOOK_PURPOSE)
        sealed = envelope.seal(key.material, secret.encode(), _aad(org_id, webhook_id))
        return key.key_id.encode() + b":" + sealed

    def _open(self, session: Session, row: models.Webhook, blob: bytes) -> bytes:
        key_id, _, sealed = blob.partition(b":")
        key_row = session.get(models.DataKey, key_id.decode())
        if key_row is None:
            raise NotFound("webhook secret is gone", "WEBHOOK_NOT_FOUND")
        return envelope.open_sealed(
            self.keys.open_key(key_row), sealed, _aad(row.org_id, row.webhook_id)
        )

    def open_secrets(
        self, session: Session, row: models.Webhook, now: datetime | None = None
    ) -> tuple[bytes, ...]:
        """The secrets a delivery is signed with: the current one, and the
        previous one while a rotation's overlap window lasts."""
        found = [self._open(session, row, row.secret_sealed)]
        expires = row.previous_secret_expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=utcnow().tzinfo)
        if row.previous_secret_sealed is not None and expires is not None:
            if (now or utcnow()) < expires:
                found.append(self._open(session, row, row.previous_secret_sealed))
        return tuple(found)

    @staticmethod
    def _owned(session: Session, org_id: str, webhook_id: str) -> models.Webhook:
        return owned(session, org_id, webhook_id)

    async def rotate(
        self, org_id: str, webhook_id: str, overlap_seconds: int
    ) -> tuple[CreatedWebhook, datetime]:
        """A new secret (shown once); the current one signs too for the overlap."""
        overlap = signing.rotation_overlap(overlap_seconds)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)

        def work(session: Session) -> tuple[WebhookRecord, datetime]:
            row = self._owned(session, org_id, webhook_id)
            now = utcnow()
            row.previous_secret_sealed = row.secret_sealed
            row.previous_secret_expires_at = now + timedelta(seconds=overlap)
            row.secret_sealed = self._seal(session, org_id, webhook_id, secret)
            outbox.record(
                session,
                org_id,
                "webhook.rotate_secret",
                f"webhook:{webhook_id}",
                "success",
                details={"overlap_seconds": overlap},
            )
            return _record(session, row), row.previous_secret_expires_at

        record, expires = await self.store.write(work)
        return CreatedWebhook(record, secret), expires

    async def set_active(self, org_id: str, webhook_id: str, active: bool) -> WebhookRecord:
        def work(session: Session) -> WebhookRecord:
            row = self._owned(session, org_id, webhook_id)
            now = utcnow()
            row.active = active
            if active:
                row.consecutive_failures = 0
                row.disabled_at = None
                row.disabled_reason = ""
            else:
                row.disabled_at = now
                row.disabled_reason = "manual"
                give_up_pending(session, webhook_id, now)
            outbox.record(
                session,
                org_id,
                "webhook.enable" if active else "webhook.disable",
                f"webhook:{webhook_id}",
                "success",
            )
            return _record(session, row)

        return await self.store.write(work)

    async def test(self, org_id: str, webhook_id: str) -> DeliveryResult:
        """Send a signed `webhook.test` event now; report the receiver's answer."""

        def load(session: Session) -> tuple[str, tuple[bytes, ...]]:
            row = self._owned(session, org_id, webhook_id)
            return row.url, self.open_secrets(session, row)

        url, secret = await self.store.read(load)
        event_id, body = event_document(TEST_EVENT, utcnow(), {"webhook_id": webhook_id})
        result = await self.sender.post(url, body, secret, event_id)

        def audit(session: Session) -> None:
            outbox.record(
                session,
                org_id,
                "webhook.test",
                f"webhook:{webhook_id}",
                "success" if result.delivered else "failed",
                details={"http_status": result.http_status, "error": result.error},
            )

        await self.store.write(audit)
        return result
