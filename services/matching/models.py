"""matching's tables: sealed face references, the gallery change numbers, and
the data keys the templates are sealed under.

Only matching reads or writes them. `org_id` is the organisation the call
carries (kyc-tier owns the organisations; nothing here refers to its table).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from identity_crypto.datakeys import DataKeyColumns
from identity_store.declarative import ID, TYPE_ANNOTATION_MAP, owned_metadata
from identity_store.types import utcnow


class Base(DeclarativeBase):
    metadata = owned_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class DataKey(DataKeyColumns, Base):
    """A customer's template key ("template"). Destroying `wrapped_key`
    crypto-shreds every template sealed under it."""

    __tablename__ = "matching_data_keys"
    __table_args__ = (Index("ix_matching_data_keys_owner", "org_id", "customer_id"),)


class Enrollment(Base):
    """A sealed face reference."""

    __tablename__ = "enrollments"
    __table_args__ = (
        Index("ix_enrollments_customer", "org_id", "customer_id"),
        Index("ix_enrollments_gallery", "org_id", "model_id", "active"),
        Index("ix_enrollments_gallery_seq", "org_id", "gallery_seq"),
    )

    enrollment_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ID)
    customer_id: Mapped[str] = mapped_column(ID)
    source: Mapped[str] = mapped_column(String(32))
    # Lower is better: dukcapil=1 ... step_up_promotion=4.
    source_priority: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    dimension: Mapped[int] = mapped_column(Integer)
    # "fp16" or "int8".
    template_format: Mapped[str] = mapped_column(String(8))
    sealed_template: Mapped[bytes | None] = mapped_column(LargeBinary)
    data_key_id: Mapped[str] = mapped_column(ForeignKey("matching_data_keys.key_id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    verification_id: Mapped[str | None] = mapped_column(ID)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column()
    retire_reason: Mapped[str | None] = mapped_column(String(32))
    # Capture quality of the reference's frame in [0, 1] (None: not sent).
    quality: Mapped[float | None] = mapped_column(Float)
    # The organisation's gallery change number of the row's last change
    # (insert, activation, retirement, shredding); replicas catch up on rows
    # above their high-water mark. Assigned under the GalleryHead row lock, so
    # commit order equals number order within an organisation.
    gallery_seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), default=0, server_default="0"
    )


class GalleryHead(Base):
    """An organisation's last gallery change number; its row lock serialises
    enrollment writes of the organisation."""

    __tablename__ = "gallery_heads"

    org_id: Mapped[str] = mapped_column(ID, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
