"""Webhook events through an outbox, and their dispatcher.

`emit` writes one delivery per subscribed endpoint in the caller's
transaction, so an event commits with the change it announces or not at
all; `body` is the exact signed document, so every attempt sends the same
bytes. The dispatcher sends due deliveries at least once with exponential
backoff and jitter for up to HORIZON, records every attempt (at the time it
was made), and disables an endpoint after a run of failures (audited). It
keeps up to DELIVERY_CONCURRENCY attempts in flight and claims again as soon
as a slot frees, fairly between the organisations
(identity_runtime.deliveries), so neither one partner's backlog nor its slow
endpoint holds up another partner's webhooks; each claimed delivery is
leased for longer than its attempt can last (it ends by
KYC_TIER_WEBHOOK_TIMEOUT_SECONDS), so no other replica sends one twice at once."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from identity_runtime.deliveries import DeliveryPool, claim_lease, fair_share, settled
from identity_runtime.egress import retry_backoff
from identity_runtime.logs import get_logger
from identity_store.types import utcnow
from services.kyc_tier import models, outbox
from services.kyc_tier.outbox_delivery import (
    DeliveryQueue,
    LeasedDelivery,
    queue_depth,
    skip_locked,
)
from services.kyc_tier.webhook_events import announce_disabled
from services.kyc_tier.webhook_targets import DeliveryResult

if TYPE_CHECKING:
    from services.kyc_tier.webhooks import WebhookFlow

log = get_logger("identity.kyc_tier.webhooks")

# Retries: egress.retry_backoff (exponential, capped, jittered); a delivery is
# given up after HORIZON.
HORIZON = timedelta(hours=72)
# Due deliveries (the oldest first) a claim looks at to share the free slots
# fairly between the organisations.
CLAIM_WINDOW = 200
# The queue label of the pending deliveries in the metrics.
QUEUE = "webhook_deliveries"


def give_up_pending(session: Session, webhook_id: str, now: datetime) -> None:
    session.execute(
        update(models.WebhookDelivery)
        .where(
            models.WebhookDelivery.webhook_id == webhook_id,
            models.WebhookDelivery.state == "pending",
        )
        .values(state="failed", finished_at=now)
    )


def dispatched(timeout_seconds: float) -> DeliveryQueue:
    """The deliveries' queue; a claim is hidden while in flight, for longer
    than its attempt (ending by `timeout_seconds`) can last."""
    return DeliveryQueue(
        label=QUEUE,
        loop_name="webhook-dispatcher",
        failure_message="webhook dispatch failed; retrying",
        lease=claim_lease(timeout_seconds),
    )


@dataclass(frozen=True)
class Due:
    delivery_id: str
    webhook_id: str
    org_id: str
    event_id: str
    url: str
    secrets: tuple[bytes, ...]
    body: bytes


class Dispatcher(LeasedDelivery):
    """Sends due deliveries at least once: claims as many as it has free
    slots under a lease (FOR UPDATE SKIP LOCKED on PostgreSQL), posts each
    outside the transaction, records the attempt, and schedules a retry with
    backoff or finishes it. An endpoint failing `disable_after` times in a
    row is disabled (audited) and its pending deliveries are given up. The
    loop claims again whenever an attempt ends (a slot frees), every
    `poll_seconds`, and when woken; `stop` cancels the attempts in flight."""

    def __init__(self, flow: WebhookFlow, disable_after: int, poll_seconds: float = 1.0):
        super().__init__(dispatched(flow.sender.timeout_seconds), log, poll_seconds)
        self.flow = flow
        self.disable_after = disable_after
        self.pool: DeliveryPool[Due] = DeliveryPool(lambda due: due.org_id, log, on_free=self.wake)

    async def deliver_due(self) -> None:
        # The attempts end on their own; each freed slot wakes the loop.
        await self.fill()

    async def stop(self) -> None:
        await super().stop()
        await self.pool.close()

    async def pending(self) -> tuple[int, Any]:
        return await self.flow.store.read(
            lambda s: queue_depth(
                s,
                models.WebhookDelivery.delivery_id,
                models.WebhookDelivery.created_at,
                models.WebhookDelivery.state == "pending",
            )
        )

    def _claim(
        self, session: Session, now: datetime, room: int, busy: Mapping[Hashable, int]
    ) -> list[Due]:
        """Up to `room` due deliveries, fairly between the organisations
        (`busy`: their attempts in flight), claimed under the lease."""
        query = (
            select(models.WebhookDelivery)
            .where(
                models.WebhookDelivery.state == "pending",
                models.WebhookDelivery.next_attempt_at <= now,
                or_(
                    models.WebhookDelivery.claimed_until.is_(None),
                    models.WebhookDelivery.claimed_until < now,
                ),
            )
            .order_by(models.WebhookDelivery.next_attempt_at, models.WebhookDelivery.delivery_id)
            .limit(CLAIM_WINDOW)
        )
        window = session.scalars(skip_locked(session, query)).all()
        due: list[Due] = []
        for row in fair_share(window, lambda row: row.org_id, room, busy):
            row.claimed_until = now + self.lease
            hook = session.get(models.Webhook, row.webhook_id)
            if hook is None or not hook.active:
                row.state, row.finished_at = "failed", now
                continue
            secret = self.flow.open_secrets(session, hook, now)
            due.append(
                Due(
                    row.delivery_id,
                    row.webhook_id,
                    row.org_id,
                    row.event_id,
                    hook.url,
                    secret,
                    row.body,
                )
            )
        return due

    async def fill(self, now: datetime | None = None) -> list[asyncio.Task[bool]]:
        """Claim the deliveries due at `now` (default: the time) into the free
        slots and start their attempts; the attempts started (each ends
        settled: whether it was delivered)."""
        at = now or utcnow()
        # A pass at a given time (tests): the attempts' times move on from it.
        skew = timedelta(0) if now is None else now - utcnow()

        async def deliver(due: Due) -> bool:
            attempted = utcnow() + skew
            result = await self.flow.sender.post(due.url, due.body, due.secrets, due.event_id)
            await self.flow.store.write(
                functools.partial(
                    self._settle, due=due, result=result, attempted=attempted, now=utcnow() + skew
                )
            )
            return result.delivered

        def claim(room: int, busy: Mapping[Hashable, int]) -> Awaitable[list[Due]]:
            return self.flow.store.read(lambda s: self._claim(s, at, room, busy))

        return await self.pool.fill(claim, deliver)

    async def flush(self, now: datetime | None = None) -> int:
        """Claim the deliveries due at `now` (default: the time) into the
        free slots and wait for their attempts; the number delivered."""
        return sum(await settled(await self.fill(now)))

    def _settle(
        self,
        session: Session,
        due: Due,
        result: DeliveryResult,
        attempted: datetime,
        now: datetime,
    ) -> None:
        """Record the attempt made at `attempted`, answered by `now`."""
        row = session.get(models.WebhookDelivery, due.delivery_id)
        # Locked: the endpoint's other deliveries in flight may settle at the
        # same time, each counting its failures in a row.
        hook = session.get(models.Webhook, due.webhook_id, with_for_update=True)
        if row is None or hook is None:
            return
        session.add(
            models.WebhookAttempt(
                delivery_id=row.delivery_id,
                attempted_at=attempted,
                http_status=result.http_status,
                latency_ms=result.latency_ms,
                error=result.error,
            )
        )
        row.attempts += 1
        row.claimed_until = None
        if result.delivered:
            row.state, row.finished_at = "delivered", now
            hook.consecutive_failures = 0
            return
        hook.consecutive_failures += 1
        retry_at = now + retry_backoff(row.attempts)
        created = row.created_at
        if created.tzinfo is None:
            created = created.replace(tzinfo=now.tzinfo)
        if retry_at - created > HORIZON:
            row.state, row.finished_at = "failed", now
        else:
            row.next_attempt_at = retry_at
        if hook.active and hook.consecutive_failures >= self.disable_after:
            hook.active = False
            hook.disabled_at = now
            hook.disabled_reason = "failures"
            give_up_pending(session, hook.webhook_id, now)
            announce_disabled(session, hook, hook.consecutive_failures)
            outbox.record(
                session,
                hook.org_id,
                "webhook.disable",
                f"webhook:{hook.webhook_id}",
                "success",
                details={"consecutive_failures": hook.consecutive_failures},
                actor="service:kyc-tier",
            )
