"""Forgetting a customer's devices: kyc-tier's erasure step in liveness.

A device registration (device id, public key) identifies a person's phone,
so an erased customer's are deleted, with the challenges issued to the
customer and never answered. Consumed challenges and accepted nonces stay
until the retention sweep purges them: they are the replay evidence that
still refuses an old bundle sent again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from identity_runtime.errors import invalid_field
from identity_store.db import Database
from identity_store.declarative import ID_LENGTH
from services.liveness.models import Challenge, Device


def require_customer_id(customer_id: str) -> None:
    """INVALID_FIELD unless `customer_id` fits liveness's id columns."""
    if not customer_id or len(customer_id) > ID_LENGTH:
        raise invalid_field("customer_id", f"required, at most {ID_LENGTH} characters")


@dataclass(frozen=True)
class Forgotten:
    devices: int
    challenges: int


async def forget_customer_devices(database: Database, org_id: str, customer_id: str) -> Forgotten:
    """Delete the customer's devices and unanswered challenges (idempotent)."""
    require_customer_id(customer_id)

    def deleted(session: Session, statement: sa.Delete) -> int:
        return cast("sa.CursorResult[Any]", session.execute(statement)).rowcount or 0

    def forget(session: Session) -> Forgotten:
        devices = sa.delete(Device).where(
            Device.org_id == org_id, Device.customer_id == customer_id
        )
        unanswered = sa.delete(Challenge).where(
            Challenge.org_id == org_id,
            Challenge.customer_id == customer_id,
            Challenge.consumed_at.is_(None),
        )
        return Forgotten(deleted(session, devices), deleted(session, unanswered))

    return await database.run(forget)
