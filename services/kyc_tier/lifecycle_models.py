"""kyc-tier's data-lifecycle table: per-organisation retention overrides
(a period lengthened where a regulation requires it; never shortened)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from identity_store.types import utcnow
from services.kyc_tier.models import Base


class RetentionOverride(Base):
    """An organisation's longer period for one of kyc-tier's data classes."""

    __tablename__ = "retention_overrides"

    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"), primary_key=True)
    # A data class of the declared table (identity_store.retention.RETENTION).
    data_class: Mapped[str] = mapped_column(String(32), primary_key=True)
    period_days: Mapped[int] = mapped_column(Integer)
    # The regulation or order requiring the longer period (a short code/text, no personal data).
    basis: Mapped[str] = mapped_column(String(200))
    # The actor (api_key:<id>, system:identity-cli, ...).
    set_by: Mapped[str] = mapped_column(String(128))
    set_at: Mapped[datetime] = mapped_column(default=utcnow)
