"""kyc-tier's erasure tables: a customer's erasure (UU PDP) and its steps
(flows/erasure.py carries them out, each step once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from identity_store.declarative import ID
from identity_store.types import utcnow
from services.kyc_tier.models import Base


class Erasure(Base):
    """A customer's erasure (UU PDP), recorded before any of it is carried
    out; its steps (`erasure_steps`) are its outbox, each done once."""

    __tablename__ = "erasures"
    __table_args__ = (Index("ix_erasures_org_requested", "org_id", "requested_at"),)

    erasure_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), unique=True)
    reason: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(16), default="requested")  # or "completed"
    request_id: Mapped[str] = mapped_column(String(128), default="")
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column()
    claimed_until: Mapped[datetime | None] = mapped_column()  # a worker's lease
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(64))  # a reason code


class ErasureStep(Base):
    """One step of an erasure; `done_at` is set with the step's result."""

    __tablename__ = "erasure_steps"

    erasure_id: Mapped[str] = mapped_column(ForeignKey("erasures.erasure_id"), primary_key=True)
    step: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    done_at: Mapped[datetime | None] = mapped_column()
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
