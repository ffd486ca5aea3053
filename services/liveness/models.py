"""liveness's tables: registered device keys, flash challenges and the nonces
already accepted (replay defence).

Only liveness reads or writes them. `org_id` is the organisation the call
carries (kyc-tier owns the organisations; nothing here refers to its table).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from identity_capture.limits import MAX_DEVICE_ID_LENGTH
from identity_store.declarative import ID, TYPE_ANNOTATION_MAP, owned_metadata
from identity_store.types import utcnow


class Base(DeclarativeBase):
    metadata = owned_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Device(Base):
    """An SDK installation's signing key."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("org_id", "device_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    org_id: Mapped[str] = mapped_column(ID)
    device_id: Mapped[str] = mapped_column(String(MAX_DEVICE_ID_LENGTH))
    customer_id: Mapped[str] = mapped_column(ID, index=True)
    algorithm: Mapped[str] = mapped_column(String(32))
    public_key_der: Mapped[bytes] = mapped_column(LargeBinary)
    key_fingerprint: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(16), default="")
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class Challenge(Base):
    """A single-use flash challenge."""

    __tablename__ = "challenges"
    __table_args__ = (Index("ix_challenges_expires", "expires_at"),)

    challenge_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ID)
    customer_id: Mapped[str] = mapped_column(ID)
    purpose: Mapped[str] = mapped_column(String(32))
    sequence: Mapped[list[Any]] = mapped_column()
    flash_duration_ms: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    consumed_at: Mapped[datetime | None] = mapped_column()
    consumed_nonce: Mapped[str | None] = mapped_column(String(128))


class UsedNonce(Base):
    """A bundle nonce already accepted (replay defence)."""

    __tablename__ = "used_nonces"

    org_id: Mapped[str] = mapped_column(ID, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(MAX_DEVICE_ID_LENGTH), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    bundle_sha256: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
