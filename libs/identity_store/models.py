"""The platform's tables.

One metadata for the whole mesh; each table has one owning service (noted on
the class) and no other service writes it. Every tenant-owned row carries
`org_id`, and every query filters on it. Personal data columns are few and
named as such; NIKs are stored sealed with a keyed hash for lookup, never in
clear. Biometric templates and capture bundles are stored sealed only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from identity_store.types import JsonDocument, UTCDateTime, utcnow

# Deterministic constraint names, so migrations are portable and reviewable.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(40)
TIER = String(16)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JsonDocument,
        list[Any]: JsonDocument,
    }


# --- kyc-tier -----------------------------------------------------------------


class Org(Base):
    """A partner organisation (tenant). Owner: kyc-tier."""

    __tablename__ = "orgs"

    org_id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Per-org face-match threshold; NULL = the model manifest's default.
    match_threshold: Mapped[float | None] = mapped_column(Float)
    # HMAC secret for Dukcapil evidence signatures, sealed.
    evidence_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A partner API key, stored as a peppered HMAC. Owner: kyc-tier."""

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
    """A partner's end user. Owner: kyc-tier."""

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
    # Keyed hash of the NIK for exact lookup without decryption.
    nik_hash: Mapped[str | None] = mapped_column(String(64))
    nik_masked: Mapped[str | None] = mapped_column(String(16))
    # The customer's "pii" data key that seals nik_sealed.
    pii_key_id: Mapped[str | None] = mapped_column(ID)
    tier: Mapped[str] = mapped_column(TIER, default="none")
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    tier_updated_at: Mapped[datetime | None] = mapped_column()
    erased_at: Mapped[datetime | None] = mapped_column()


class Verification(Base):
    """One immutable check. Owner: kyc-tier. Kept 7 years."""

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
    """Every attempt, including refused ones. Owner: kyc-tier."""

    __tablename__ = "attempts"
    __table_args__ = (
        Index("ix_attempts_org_created", "org_id", "created_at"),
        Index("ix_attempts_customer", "org_id", "customer_id", "created_at"),
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


class TierEvent(Base):
    """A change of a customer's tier. Owner: kyc-tier."""

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
    """A verification waiting for an analyst. Owner: kyc-tier."""

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_org_status", "org_id", "status", "created_at"),)

    review_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"))
    verification_id: Mapped[str] = mapped_column(ForeignKey("verifications.verification_id"))
    kind: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column()


class CaptureBundle(Base):
    """Sealed capture frames, kept for their retention window. Owner: kyc-tier."""

    __tablename__ = "capture_bundles"
    __table_args__ = (Index("ix_capture_bundles_expires", "expires_at"),)

    bundle_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    verification_id: Mapped[str] = mapped_column(ForeignKey("verifications.verification_id"))
    # "onboarding" (3 years) or "step_up" (90 days).
    retention_class: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    data_key_id: Mapped[str] = mapped_column(ForeignKey("data_keys.key_id"))
    sealed_payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class Webhook(Base):
    """A partner webhook endpoint. Owner: kyc-tier."""

    __tablename__ = "webhooks"

    webhook_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[Any]] = mapped_column(default=list)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditOutbox(Base):
    """Audit entries written in the same transaction as the action they
    record, delivered to the audit service by a relay (at least once, in
    order). Owner: kyc-tier."""

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


# --- matching -----------------------------------------------------------------


class DataKey(Base):
    """A data-encryption key wrapped by a key-encryption key. Owner: matching
    (and kyc-tier for its own sealed columns). Destroying `wrapped_key`
    crypto-shreds everything sealed under it."""

    __tablename__ = "data_keys"
    __table_args__ = (Index("ix_data_keys_owner", "org_id", "customer_id"),)

    key_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
    # NULL for an organisation-level key.
    customer_id: Mapped[str | None] = mapped_column(ID)
    # "template", "bundle", "pii".
    purpose: Mapped[str] = mapped_column(String(16))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rewrapped_at: Mapped[datetime | None] = mapped_column()
    destroyed_at: Mapped[datetime | None] = mapped_column()


class Enrollment(Base):
    """A sealed face reference. Owner: matching."""

    __tablename__ = "enrollments"
    __table_args__ = (
        Index("ix_enrollments_customer", "org_id", "customer_id"),
        Index("ix_enrollments_gallery", "org_id", "model_id", "active"),
        Index("ix_enrollments_gallery_seq", "org_id", "gallery_seq"),
    )

    enrollment_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
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
    data_key_id: Mapped[str] = mapped_column(ForeignKey("data_keys.key_id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    verification_id: Mapped[str | None] = mapped_column(ID)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column()
    retire_reason: Mapped[str | None] = mapped_column(String(32))
    # The organisation's gallery change number of the row's last change
    # (insert, activation, retirement, shredding); replicas catch up on rows
    # above their high-water mark. Assigned under the GalleryHead row lock, so
    # commit order equals number order within an organisation.
    gallery_seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), default=0, server_default="0"
    )


class GalleryHead(Base):
    """An organisation's last gallery change number; its row lock serialises
    enrollment writes of the organisation. Owner: matching."""

    __tablename__ = "gallery_heads"

    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- liveness -----------------------------------------------------------------


class Device(Base):
    """An SDK installation's signing key. Owner: liveness."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("org_id", "device_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
    device_id: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[str] = mapped_column(ID, index=True)
    algorithm: Mapped[str] = mapped_column(String(32))
    public_key_der: Mapped[bytes] = mapped_column(LargeBinary)
    key_fingerprint: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(16), default="")
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class Challenge(Base):
    """A single-use flash challenge. Owner: liveness."""

    __tablename__ = "challenges"
    __table_args__ = (Index("ix_challenges_expires", "expires_at"),)

    challenge_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"))
    customer_id: Mapped[str] = mapped_column(ID)
    purpose: Mapped[str] = mapped_column(String(32))
    sequence: Mapped[list[Any]] = mapped_column()
    flash_duration_ms: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    consumed_at: Mapped[datetime | None] = mapped_column()
    consumed_nonce: Mapped[str | None] = mapped_column(String(128))


class UsedNonce(Base):
    """A bundle nonce already accepted (replay defence). Owner: liveness."""

    __tablename__ = "used_nonces"

    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.org_id"), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    bundle_sha256: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


# --- audit --------------------------------------------------------------------


class AuditEntry(Base):
    """One link of the HMAC chain. Owner: audit. Append-only, 7 years."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_tenant_time", "tenant_id", "recorded_at"),
        Index("ix_audit_tenant_subject", "tenant_id", "subject"),
        Index("ix_audit_tenant_action", "tenant_id", "action"),
        # Keyset pagination of a tenant's entries, newest first.
        Index("ix_audit_tenant_sequence", "tenant_id", "sequence"),
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


class AuditChainHead(Base):
    """The chain's last link; its row lock serialises appenders. Owner: audit."""

    __tablename__ = "audit_chain_head"

    chain_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    last_hmac: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed anchor of the chain at one position. Verification of a chain
    whose oldest entries were purged (after the 7-year retention) starts from
    the checkpoint just below the oldest kept entry. Owner: audit."""

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
