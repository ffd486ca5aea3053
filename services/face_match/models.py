"""face-match's tables: submissions, their transitions, the job queue, the
callback outbox, the OAuth clients and the data keys of the sealed images.
Only face-match reads or writes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from identity_crypto.datakeys import DataKeyColumns
from identity_store.declarative import ID, TYPE_ANNOTATION_MAP, owned_metadata
from identity_store.types import utcnow


class Base(DeclarativeBase):
    metadata = owned_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Submission(Base):
    """One Face Match submission of one organisation, named by the partner's correlation id."""

    __tablename__ = "fm_submissions"
    __table_args__ = (UniqueConstraint("org_id", "correlation_id"),)

    submission_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(String(64))
    correlation_id: Mapped[str] = mapped_column(String(128))
    reference_type: Mapped[str] = mapped_column(String(32))
    callback_url: Mapped[str] = mapped_column(String(2048), default="")
    state: Mapped[str] = mapped_column(String(24))
    failure_reason: Mapped[str] = mapped_column(String(64), default="")
    # Content types of the uploaded images ("" = not uploaded yet).
    selfie_type: Mapped[str] = mapped_column(String(32), default="")
    reference_type_uploaded: Mapped[str] = mapped_column(String(32), default="")
    # The result (decision, similarity, quality, boxes, models, timings).
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    # When the uploaded images are deleted (set at completion), and when they were.
    purge_images_at: Mapped[datetime | None] = mapped_column(default=None)
    images_purged_at: Mapped[datetime | None] = mapped_column(default=None)


class Transition(Base):
    """One lifecycle transition of a submission, and the outbox of its entry
    in the audit chain (written in the transaction that makes it)."""

    __tablename__ = "fm_transitions"
    __table_args__ = (
        Index("ix_fm_transitions_submission", "submission_id", "sequence"),
        Index("ix_fm_transitions_unaudited", "audited_at", "sequence"),
    )

    sequence: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    submission_id: Mapped[str] = mapped_column(ID)
    org_id: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(String(128), default="")
    at: Mapped[datetime] = mapped_column()
    # The audit chain (audit service) has it; until then a relay claims it.
    audited_at: Mapped[datetime | None] = mapped_column(default=None)
    audit_claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    # The entry key of its audit entry (fm0005), never reused:
    # `face-match:<submission id>:fmt_<random>`. The sequence is not unique
    # over time on SQLite (no AUTOINCREMENT: the numbers of deleted rows come
    # back). None: a row written before fm0005 (the relay keys it by its
    # submission and sequence), or `face-match:outbox:<sequence>` for one a
    # relay had claimed then, which may be in the chain under that key.
    audit_key: Mapped[str | None] = mapped_column(String(128), default=None)


class AuditOutbox(Base):
    """Audit entries of face-match's actions that are not a submission's
    transition (an OAuth client's creation and revocation), written in the
    transaction of the action and appended by the audit relay (fm0005)."""

    __tablename__ = "fm_audit_outbox"
    __table_args__ = (Index("ix_fm_audit_outbox_unaudited", "audited_at", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # `face-match:audit:fma_<random>`: never reused (see Transition.audit_key).
    audit_key: Mapped[str] = mapped_column(String(128))
    org_id: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    # Ids and codes only, never a secret.
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column()
    audited_at: Mapped[datetime | None] = mapped_column(default=None)
    audit_claimed_until: Mapped[datetime | None] = mapped_column(default=None)


class Job(Base):
    """A queued processing job: leased by one worker at a time (SKIP LOCKED)."""

    __tablename__ = "fm_jobs"
    __table_args__ = (Index("ix_fm_jobs_ready", "state", "available_at"),)

    job_id: Mapped[str] = mapped_column(ID, primary_key=True)
    submission_id: Mapped[str] = mapped_column(ID, unique=True)
    # queued, leased, done, dead (poison).
    state: Mapped[str] = mapped_column(String(16))
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column()
    # The current lease: its token fences a worker whose lease expired.
    lease_token: Mapped[str] = mapped_column(String(40), default="")
    leased_by: Mapped[str] = mapped_column(String(128), default="")
    last_error: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Callback(Base):
    """The completion callback of a submission (transactional outbox)."""

    __tablename__ = "fm_callbacks"
    __table_args__ = (Index("ix_fm_callbacks_due", "state", "next_attempt_at"),)

    callback_id: Mapped[str] = mapped_column(ID, primary_key=True)
    submission_id: Mapped[str] = mapped_column(ID, unique=True)
    org_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    body: Mapped[str] = mapped_column(Text)
    # pending, delivered, dead.
    state: Mapped[str] = mapped_column(String(16))
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column()
    last_status: Mapped[int] = mapped_column(Integer, default=0)
    # Why the last attempt failed (identity_runtime.egress.DeliveryResult.error:
    # address_refused, dns_failure, timeout, ...); None once delivered or never tried.
    last_error: Mapped[str | None] = mapped_column(String(32), default=None)
    # When the last attempt was claimed (fm0004); None before the first.
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    # When the callback was (last) queued: at completion, or by a redelivery
    # (fm0006). It is retried until FACE_MATCH_CALLBACK_RETRY_HOURS after this.
    # None only on a row an older release wrote: its horizon starts at its
    # next attempt.
    queued_at: Mapped[datetime | None] = mapped_column(default=utcnow)


class CallbackSecret(Base):
    """An organisation's callback signing secret (fm0006), sealed (AES-256-GCM
    under a key derived from FACE_MATCH_CALLBACK_SIGNING_KEY, bound to the
    organisation). `secret_sealed` None: the organisation still signs with the
    secret derived from the service key (it had submissions before fm0006)
    until it first rotates. After a rotation the previous secret signs too
    until `previous_expires_at`."""

    __tablename__ = "fm_callback_secrets"

    org_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    previous_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    previous_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column()
    rotated_at: Mapped[datetime | None] = mapped_column(default=None)


class OAuthClient(Base):
    """An organisation's OAuth 2.0 client; the secret is stored as a peppered hash."""

    __tablename__ = "fm_oauth_clients"

    client_id: Mapped[str] = mapped_column(ID, primary_key=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class DataKey(DataKeyColumns, Base):
    """The data key of one submission's uploaded images in the local bucket
    (fm0007; services/face_match/sealing.py): `customer_id` holds the
    submission id (Face Match has no customer), `purpose` is "image". Purging
    the images destroys it (crypto-shredding); the row goes with the
    submission."""

    __tablename__ = "fm_data_keys"
    __table_args__ = (Index("ix_fm_data_keys_owner", "org_id", "customer_id"),)
