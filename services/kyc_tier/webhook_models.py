"""kyc-tier's webhook tables: endpoints, the webhook outbox (one delivery per
event and endpoint) and every delivery attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from identity_store.declarative import ID
from identity_store.types import utcnow
from services.kyc_tier.models import Base


class Webhook(Base):
    """A partner webhook endpoint."""

    __tablename__ = "webhooks"

    webhook_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[Any]] = mapped_column(default=list)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Failed deliveries in a row (reset by a success); the endpoint is disabled at a limit.
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    disabled_at: Mapped[datetime | None] = mapped_column()
    # After a rotation: the previous secret, sealed, signing too until it expires.
    previous_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column()
    # "" while active; "manual" or "failures" (a run of failed deliveries).
    disabled_reason: Mapped[str] = mapped_column(String(16), default="")
    # Deleted by the organisation: no longer listed or served; its log is kept.
    deleted_at: Mapped[datetime | None] = mapped_column()


class WebhookDelivery(Base):
    """One event for one endpoint, written in the transaction of the change it
    announces (the webhook outbox); `body` is the exact signed document, so
    every attempt sends the same bytes."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),)

    delivery_id: Mapped[str] = mapped_column(ID, primary_key=True)
    event_id: Mapped[str] = mapped_column(ID, index=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.webhook_id"), index=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # pending, delivered, failed (gave up: horizon passed or endpoint disabled).
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()


class WebhookAttempt(Base):
    """One delivery attempt: when, the receiver's status, latency, error class."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.delivery_id"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    http_status: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(String(32), default="")
