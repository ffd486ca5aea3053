"""kyc-tier's tables for browser SDK access (issue 18): short-lived
single-customer session tokens (stored as peppered hashes) and each
organisation's allowed web origins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from identity_store.declarative import ID
from identity_store.types import utcnow
from services.kyc_tier.models import Base, ExpiringGrantColumns


class SdkSession(ExpiringGrantColumns, Base):
    """A browser's access to one customer's capture routes, until `expires_at`."""

    __tablename__ = "sdk_sessions"

    session_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    # Hex HMAC-SHA256(pepper, token): the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Who minted it ("api_key:key_...").
    created_by: Mapped[str] = mapped_column(String(128))


class SdkOrigin(Base):
    """A web origin whose pages may use the organisation's SDK sessions."""

    __tablename__ = "sdk_origins"

    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"), primary_key=True)
    # scheme://host[:port], lower-case, no path.
    origin: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
