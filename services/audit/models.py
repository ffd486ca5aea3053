"""audit's tables: the HMAC chain's entries, its head and its signed checkpoints.

Only audit reads or writes them; entries are appended, never updated except
that an erasure redacts an erased customer's evidence hashes (sealed by a
redaction MAC, redaction.py), and purged only after the retention period
(from a checkpoint).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from identity_store.declarative import ID, TYPE_ANNOTATION_MAP, owned_metadata


class Base(DeclarativeBase):
    metadata = owned_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class AuditEntry(Base):
    """One link of the HMAC chain. Append-only (evidence hashes redactable), 7 years."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_tenant_time", "tenant_id", "recorded_at"),
        Index("ix_audit_tenant_subject", "tenant_id", "subject"),
        Index("ix_audit_tenant_action", "tenant_id", "action"),
        # Keyset pagination of a tenant's entries, newest first.
        Index("ix_audit_tenant_sequence", "tenant_id", "sequence"),
        # At most one entry per client key (redelivery returns the existing one).
        Index("ix_audit_entry_key", "entry_key", unique=True),
    )

    sequence: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    entry_id: Mapped[str] = mapped_column(ID, unique=True)
    recorded_at: Mapped[datetime] = mapped_column()
    tenant_id: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str] = mapped_column(String(128), default="")
    evidence_hashes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    previous_hmac: Mapped[str] = mapped_column(String(64))
    entry_hmac: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    # The client's key of the entry (AppendBatch's entry_key); NULL without one.
    entry_key: Mapped[str | None] = mapped_column(String(128))
    # Set when an erasure redacted the entry's evidence hashes (redaction.py):
    # the MAC of the entry as kept, under `redaction_key_id`. NULL otherwise.
    redaction_hmac: Mapped[str | None] = mapped_column(String(64))
    redaction_key_id: Mapped[str | None] = mapped_column(String(64))


class AuditChainHead(Base):
    """The chain's last link; its row lock serialises appenders."""

    __tablename__ = "audit_chain_head"

    chain_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    last_hmac: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed anchor of the chain at one position. Verification of a chain
    whose oldest entries were purged (after the 7-year retention) starts from
    the checkpoint just below the oldest kept entry."""

    __tablename__ = "audit_checkpoints"

    sequence: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    # entry_hmac of the entry at `sequence`.
    entry_hmac: Mapped[str] = mapped_column(String(64))
    entry_recorded_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    # "anchor" (published head) or "purge" (entries up to here were deleted).
    kind: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[str] = mapped_column(String(64))
    checkpoint_hmac: Mapped[str] = mapped_column(String(64))
