"""A customer's devices apart from the capture checks: listing them,
revoking one, and forgetting them all (kyc-tier's erasure step).

A revoked device keeps its row, with `revoked_at`: the capture checks
refuse its signatures (DEVICE_REVOKED) and registration refuses its id, so
a lost phone's key stays dead whoever holds it.

A device registration (device id, public key) identifies a person's phone,
so an erased customer's are deleted (revoked ones too), with the challenges
issued to the customer and never answered. Consumed challenges and accepted
nonces stay until the retention sweep purges them: they are the replay
evidence that still refuses an old bundle sent again. The nonces of the
customer's devices lose their bundle digest (a digest of the customer's
face images), which only told a retry of the same bundle from a replay: the
erased customer's bundles are refused whatever they hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from identity_capture.limits import MAX_DEVICE_ID_LENGTH
from identity_runtime.convert import same_named
from identity_runtime.errors import NotFound, PermissionDenied, invalid_field
from identity_store.db import Database
from identity_store.declarative import ID_LENGTH
from services.liveness.models import Challenge, Device, UsedNonce


@dataclass(frozen=True)
class DeviceRecord:
    device_id: str
    customer_id: str
    algorithm: str
    key_fingerprint: str
    platform: str
    registered_at: datetime
    revoked_at: datetime | None = None


def device_record(row: Device) -> DeviceRecord:
    return same_named(DeviceRecord, row)


def require_customer_id(customer_id: str) -> None:
    """INVALID_FIELD unless `customer_id` fits liveness's id columns."""
    if not customer_id or len(customer_id) > ID_LENGTH:
        raise invalid_field("customer_id", f"required, at most {ID_LENGTH} characters")


def require_device_id(device_id: str, field: str = "device_id") -> None:
    """INVALID_FIELD unless `device_id` fits the devices table."""
    if not device_id or len(device_id) > MAX_DEVICE_ID_LENGTH:
        raise invalid_field(field, f"required, at most {MAX_DEVICE_ID_LENGTH} characters")


def revoked(device_id: str) -> PermissionDenied:
    """The refusal of a revoked device's signature or of its re-registration."""
    return PermissionDenied(
        "the device's key was revoked; a new installation registers a new device",
        "DEVICE_REVOKED",
        {"device_id": device_id},
    )


def device_not_found(device_id: str) -> NotFound:
    return NotFound(
        "no such device for this customer", "DEVICE_NOT_FOUND", {"device_id": device_id}
    )


async def list_devices(database: Database, org_id: str, customer_id: str) -> list[DeviceRecord]:
    """The customer's devices, revoked ones included, newest first."""
    require_customer_id(customer_id)
    query = (
        sa.select(Device)
        .where(Device.org_id == org_id, Device.customer_id == customer_id)
        .order_by(Device.registered_at.desc(), Device.id.desc())
    )
    return await database.run(
        lambda session: [device_record(row) for row in session.scalars(query)]
    )


async def revoke_device(
    database: Database, org_id: str, customer_id: str, device_id: str, now: datetime
) -> tuple[DeviceRecord, bool]:
    """Revoke the customer's device; (the device, whether this call revoked it).
    Another customer's or organisation's device is DEVICE_NOT_FOUND."""
    require_customer_id(customer_id)
    require_device_id(device_id)

    def revoke(session: Session) -> tuple[DeviceRecord, bool]:
        row = session.scalars(
            sa.select(Device)
            .where(Device.org_id == org_id, Device.device_id == device_id)
            .with_for_update()
        ).first()
        if row is None or row.customer_id != customer_id:
            raise device_not_found(device_id)
        if row.revoked_at is not None:
            return device_record(row), False
        row.revoked_at = now
        session.flush()
        return device_record(row), True

    return await database.run(revoke)


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
        owned = sa.select(Device.device_id, Device.registered_at).where(
            Device.org_id == org_id, Device.customer_id == customer_id
        )
        for device_id, registered_at in session.execute(owned).all():
            # Since this customer registered the device id (another's before).
            session.execute(
                sa.update(UsedNonce)
                .where(
                    UsedNonce.org_id == org_id,
                    UsedNonce.device_id == device_id,
                    UsedNonce.seen_at >= registered_at,
                )
                .values(bundle_sha256="")
            )
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
