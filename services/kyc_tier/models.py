"""kyc-tier's tables: organisations, API keys, customers, verifications and
everything the flows record, and the data keys that seal kyc-tier's own
columns (NIKs, capture bundles).

Only kyc-tier reads or writes them (the other services get what they need of
an organisation in their requests). Every tenant-owned row carries `org_id`,
and every query filters on it. Personal data columns are few and named as
such; NIKs are stored sealed with a keyed hash for lookup, never in clear;
capture bundles are stored sealed only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from identity_crypto.datakeys import DataKeyColumns
from identity_store.declarative import ID, TYPE_ANNOTATION_MAP, owned_metadata
from identity_store.types import utcnow

TIER = String(16)


class Base(DeclarativeBase):
    metadata = owned_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class ExpiringGrantColumns:
    """The closing columns of a revocable grant that expires (a console
    session, an SDK session). Mapped after the table's own columns."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class Org(Base):
    """A partner organisation (tenant)."""

    __tablename__ = "orgs"

    org_id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Per-org face-match threshold; NULL = the model manifest's default.
    match_threshold: Mapped[float | None] = mapped_column(Float)
    # HMAC secret for Dukcapil evidence signatures, sealed.
    evidence_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the evidence secret was last set or rotated (NULL: never, or before 0300).
    evidence_secret_updated_at: Mapped[datetime | None] = mapped_column()
    # The endpoint that receives the organisation's own notices (endpoint.disabled).
    default_webhook_id: Mapped[str | None] = mapped_column(ID)


class ApiKey(Base):
    """A partner API key, stored as a peppered HMAC."""

    __tablename__ = "api_keys"

    api_key_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # Public first characters of the key ("idk_live_ab12"), for recognition.
    prefix: Mapped[str] = mapped_column(String(32))
    # Hex HMAC-SHA256(pepper, secret).
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class Customer(Base):
    """A partner's end user."""

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("org_id", "external_id"),
        Index("ix_customers_org_created", "org_id", "created_at"),
        Index("ix_customers_org_nik_hash", "org_id", "nik_hash"),
    )

    customer_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
    external_id: Mapped[str] = mapped_column(String(128))
    # Personal data (removed on erasure).
    full_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    nik_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Keyed hash of the NIK, bound to the organisation, for exact lookup
    # without decryption (pii.PiiVault.nik_index).
    nik_hash: Mapped[str | None] = mapped_column(String(64))
    # pii.INDEX_VERSION of nik_hash; NULL: hashed before it was bound to the
    # organisation, re-indexed by recovery.LegacyNikIndex.
    nik_index_version: Mapped[int | None] = mapped_column(Integer)
    nik_masked: Mapped[str | None] = mapped_column(String(16))
    # The customer's "pii" data key that seals nik_sealed.
    pii_key_id: Mapped[str | None] = mapped_column(ID)
    tier: Mapped[str] = mapped_column(TIER, default="none")
    # "active", "erasing" (an erasure was requested) or "erased".
    status: Mapped[str] = mapped_column(String(16), default="active")
    # A legal hold (internal-scope route or CLI) refuses erasure; the reason is a code.
    legal_hold_since: Mapped[datetime | None] = mapped_column()
    legal_hold_reason: Mapped[str | None] = mapped_column(String(64))
    # A breach revocation retired the face templates: enroll again (services/kyc_tier/breach.py).
    reenrollment_required_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    tier_updated_at: Mapped[datetime | None] = mapped_column()
    erased_at: Mapped[datetime | None] = mapped_column()


class Verification(Base):
    """One immutable check. Kept 7 years."""

    __tablename__ = "verifications"
    __table_args__ = (
        # A capture nonce is accepted once per organisation (24 h idempotency).
        UniqueConstraint("org_id", "nonce"),
        Index("ix_verifications_customer", "org_id", "customer_id", "created_at"),
    )

    verification_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"))
    kind: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    models: Mapped[dict[str, Any]] = mapped_column(default=dict)
    input_hashes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Non-personal links and facts the tier ladder reads (e.g. that a match
    # was against the enrolled reference on a live capture).
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    nonce: Mapped[str | None] = mapped_column(String(128))
    bundle_sha256: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attempt(Base):
    """Every attempt, including refused ones."""

    __tablename__ = "attempts"
    __table_args__ = (
        Index("ix_attempts_org_created", "org_id", "created_at"),
        Index("ix_attempts_customer", "org_id", "customer_id", "created_at"),
        Index("ix_attempts_nonce", "org_id", "nonce"),
    )

    attempt_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
    customer_id: Mapped[str] = mapped_column(ID)
    kind: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    verification_id: Mapped[str | None] = mapped_column(ID)
    request_id: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A capture's nonce and digest (flows/replays.py).
    nonce: Mapped[str | None] = mapped_column(String(128))
    bundle_sha256: Mapped[str | None] = mapped_column(String(64))


class TierEvent(Base):
    """A change of a customer's tier."""

    __tablename__ = "tier_events"
    __table_args__ = (Index("ix_tier_events_org_created", "org_id", "created_at"),)

    event_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    from_tier: Mapped[str] = mapped_column(TIER)
    to_tier: Mapped[str] = mapped_column(TIER)
    cause: Mapped[str] = mapped_column(String(32))
    verification_id: Mapped[str | None] = mapped_column(ID)
    actor: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewItem(Base):
    """A verification waiting for an analyst."""

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_org_status", "org_id", "status", "created_at"),)

    review_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"))
    verification_id: Mapped[str] = mapped_column(ForeignKey("verifications.verification_id"))
    kind: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    # Ids beside the verification (a duplicate face: the other customers, the held enrollment).
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column()


class CaptureBundle(Base):
    """Sealed capture frames, kept for their retention window."""

    __tablename__ = "capture_bundles"
    __table_args__ = (Index("ix_capture_bundles_expires", "expires_at"),)

    bundle_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    verification_id: Mapped[str] = mapped_column(ForeignKey("verifications.verification_id"))
    # "onboarding" (3 years) or "step_up" (90 days).
    retention_class: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    data_key_id: Mapped[str] = mapped_column(ForeignKey("kyc_data_keys.key_id"))
    sealed_payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class AuditOutbox(Base):
    """Audit entries written in the same transaction as the action they
    record, delivered to the audit service by a relay (at least once, in
    order)."""

    __tablename__ = "audit_outbox"
    __table_args__ = (Index("ix_audit_outbox_pending", "delivered_at", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    org_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(128), default="")
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    evidence_hashes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()
    # A relay's lease on the row while it delivers it.
    claimed_until: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Set when the audit service refused the entry for good (a bug, never a
    # partner's input): it stays here for operators instead of blocking the
    # entries behind it.
    rejected_reason: Mapped[str | None] = mapped_column(String(64))


class DataKey(DataKeyColumns, Base):
    """A data key of kyc-tier's own sealed data: a customer's NIK ("pii") and
    capture bundles ("bundle"). Erasure destroys them (crypto-shredding)."""

    __tablename__ = "kyc_data_keys"
    __table_args__ = (Index("ix_kyc_data_keys_owner", "org_id", "customer_id"),)

    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))


# The webhook tables live in their own module (kept short); imported here so
# `models.Webhook` and the metadata hold them wherever models is imported.
# Browser SDK sessions and origins (issue 18), in their own module too.
from services.kyc_tier.erasure_models import Erasure as Erasure  # noqa: E402
from services.kyc_tier.erasure_models import ErasureStep as ErasureStep  # noqa: E402
from services.kyc_tier.lifecycle_models import RetentionOverride as RetentionOverride  # noqa: E402
from services.kyc_tier.sdk_models import SdkOrigin as SdkOrigin  # noqa: E402
from services.kyc_tier.sdk_models import SdkSession as SdkSession  # noqa: E402
from services.kyc_tier.webhook_models import (  # noqa: E402
    Webhook as Webhook,
)
from services.kyc_tier.webhook_models import (  # noqa: E402
    WebhookAttempt as WebhookAttempt,
)
from services.kyc_tier.webhook_models import (  # noqa: E402
    WebhookDelivery as WebhookDelivery,
)
