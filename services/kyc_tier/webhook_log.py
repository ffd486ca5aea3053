"""The delivery log of a webhook endpoint, and redelivery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity_runtime.errors import FailedPrecondition, NotFound, require
from identity_store.types import utcnow
from services.kyc_tier import models, outbox
from services.kyc_tier.paging import Page, newest_first
from services.kyc_tier.store import Store
from services.kyc_tier.webhooks import owned


@dataclass(frozen=True)
class AttemptView:
    attempted_at: datetime
    http_status: int
    latency_ms: int
    error: str


@dataclass(frozen=True)
class DeliveryView:
    delivery_id: str
    event_id: str
    event_type: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    finished_at: datetime | None
    attempt_log: tuple[AttemptView, ...]


def _delivery_view(session: Session, row: models.WebhookDelivery) -> DeliveryView:
    attempts = session.scalars(
        select(models.WebhookAttempt)
        .where(models.WebhookAttempt.delivery_id == row.delivery_id)
        .order_by(models.WebhookAttempt.id)
    )
    return DeliveryView(
        row.delivery_id,
        row.event_id,
        row.event_type,
        row.state,
        row.attempts,
        row.created_at,
        row.next_attempt_at if row.state == "pending" else None,
        row.finished_at,
        tuple(AttemptView(a.attempted_at, a.http_status, a.latency_ms, a.error) for a in attempts),
    )


@dataclass
class DeliveryLog:
    store: Store

    async def deliveries(
        self, org_id: str, webhook_id: str, size: int = 0, token: str = ""
    ) -> Page[DeliveryView]:
        """One page of the endpoint's deliveries (newest first), with attempts;
        the token of the next (older) page, "" on the last."""

        def work(session: Session) -> Page[DeliveryView]:
            owned(session, org_id, webhook_id)
            found = newest_first(
                session,
                select(models.WebhookDelivery).where(
                    models.WebhookDelivery.webhook_id == webhook_id
                ),
                models.WebhookDelivery.created_at,
                models.WebhookDelivery.delivery_id,
                size,
                token,
            )
            return Page([_delivery_view(session, r) for r in found.items], found.next_page_token)

        return await self.store.read(work)

    async def redeliver(self, org_id: str, webhook_id: str, delivery_id: str) -> DeliveryView:
        """Queue the delivery again now: the same event id and body."""
        require(bool(delivery_id), "delivery_id", "is required")

        def work(session: Session) -> DeliveryView:
            hook = owned(session, org_id, webhook_id)
            row = session.get(models.WebhookDelivery, delivery_id)
            if row is None or row.webhook_id != webhook_id:
                raise NotFound("no such delivery", "WEBHOOK_DELIVERY_NOT_FOUND")
            if not hook.active:
                raise FailedPrecondition(
                    "the webhook endpoint is disabled: enable it first", "WEBHOOK_DISABLED"
                )
            now = utcnow()
            row.state, row.next_attempt_at = "pending", now
            row.finished_at, row.claimed_until = None, None
            outbox.record(
                session,
                org_id,
                "webhook.redeliver",
                f"webhook:{webhook_id}",
                "success",
                details={"delivery_id": delivery_id},
            )
            session.flush()
            return _delivery_view(session, row)

        return await self.store.write(work)
