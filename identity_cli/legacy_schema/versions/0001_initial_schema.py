"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import identity_store.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_chain_head",
        sa.Column("chain_id", sa.String(length=32), nullable=False),
        sa.Column(
            "last_sequence", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("last_hmac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", name=op.f("pk_audit_chain_head")),
    )
    op.create_table(
        "audit_entries",
        sa.Column(
            "sequence",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("entry_id", sa.String(length=40), nullable=False),
        sa.Column("recorded_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column(
            "evidence_hashes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("previous_hmac", sa.String(length=64), nullable=False),
        sa.Column("entry_hmac", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_audit_entries")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_audit_entries_entry_id")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_audit_tenant_action", ["tenant_id", "action"], unique=False)
        batch_op.create_index("ix_audit_tenant_subject", ["tenant_id", "subject"], unique=False)
        batch_op.create_index("ix_audit_tenant_time", ["tenant_id", "recorded_at"], unique=False)

    op.create_table(
        "orgs",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("match_threshold", sa.Float(), nullable=True),
        sa.Column("evidence_secret_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_orgs")),
    )
    op.create_table(
        "api_keys",
        sa.Column("api_key_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "scopes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.org_id"], name=op.f("fk_api_keys_org_id_orgs")),
        sa.PrimaryKeyConstraint("api_key_id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_keys_secret_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_org_id"), ["org_id"], unique=False)

    op.create_table(
        "attempts",
        sa.Column("attempt_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("verification_id", sa.String(length=40), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.org_id"], name=op.f("fk_attempts_org_id_orgs")),
        sa.PrimaryKeyConstraint("attempt_id", name=op.f("pk_attempts")),
    )
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_attempts_customer", ["org_id", "customer_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_attempts_org_created", ["org_id", "created_at"], unique=False)

    op.create_table(
        "challenges",
        sa.Column("challenge_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column(
            "sequence",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("flash_duration_ms", sa.Integer(), nullable=False),
        sa.Column("issued_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("consumed_nonce", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.org_id"], name=op.f("fk_challenges_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("challenge_id", name=op.f("pk_challenges")),
    )
    with op.batch_alter_table("challenges", schema=None) as batch_op:
        batch_op.create_index("ix_challenges_expires", ["expires_at"], unique=False)

    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("nik_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("nik_hash", sa.String(length=64), nullable=True),
        sa.Column("nik_masked", sa.String(length=16), nullable=True),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "tier_updated_at", identity_store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("erased_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.org_id"], name=op.f("fk_customers_org_id_orgs")),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customers")),
        sa.UniqueConstraint("org_id", "external_id", name=op.f("uq_customers_org_id_external_id")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index("ix_customers_org_created", ["org_id", "created_at"], unique=False)
        batch_op.create_index("ix_customers_org_nik_hash", ["org_id", "nik_hash"], unique=False)

    op.create_table(
        "data_keys",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("kek_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rewrapped_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("destroyed_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.org_id"], name=op.f("fk_data_keys_org_id_orgs")),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_data_keys")),
    )
    with op.batch_alter_table("data_keys", schema=None) as batch_op:
        batch_op.create_index("ix_data_keys_owner", ["org_id", "customer_id"], unique=False)

    op.create_table(
        "devices",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("public_key_der", sa.LargeBinary(), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("registered_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.org_id"], name=op.f("fk_devices_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("org_id", "device_id", name=op.f("uq_devices_org_id_device_id")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "used_nonces",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("bundle_sha256", sa.String(length=64), nullable=False),
        sa.Column("seen_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.org_id"], name=op.f("fk_used_nonces_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("org_id", "device_id", "nonce", name=op.f("pk_used_nonces")),
    )
    with op.batch_alter_table("used_nonces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_used_nonces_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "webhooks",
        sa.Column("webhook_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column(
            "events",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.org_id"], name=op.f("fk_webhooks_org_id_orgs")),
        sa.PrimaryKeyConstraint("webhook_id", name=op.f("pk_webhooks")),
    )
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhooks_org_id"), ["org_id"], unique=False)

    op.create_table(
        "enrollments",
        sa.Column("enrollment_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_priority", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("template_format", sa.String(length=8), nullable=False),
        sa.Column("sealed_template", sa.LargeBinary(), nullable=True),
        sa.Column("data_key_id", sa.String(length=40), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("verification_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("retire_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["data_key_id"], ["data_keys.key_id"], name=op.f("fk_enrollments_data_key_id_data_keys")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.org_id"], name=op.f("fk_enrollments_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("enrollment_id", name=op.f("pk_enrollments")),
    )
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index("ix_enrollments_customer", ["org_id", "customer_id"], unique=False)
        batch_op.create_index(
            "ix_enrollments_gallery", ["org_id", "model_id", "active"], unique=False
        )

    op.create_table(
        "tier_events",
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("from_tier", sa.String(length=16), nullable=False),
        sa.Column("to_tier", sa.String(length=16), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("verification_id", sa.String(length=40), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_tier_events_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.org_id"], name=op.f("fk_tier_events_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_tier_events")),
    )
    with op.batch_alter_table("tier_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tier_events_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index("ix_tier_events_org_created", ["org_id", "created_at"], unique=False)

    op.create_table(
        "verifications",
        sa.Column("verification_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "scores",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "models",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "input_hashes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("nonce", sa.String(length=128), nullable=True),
        sa.Column("bundle_sha256", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_verifications_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.org_id"], name=op.f("fk_verifications_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("verification_id", name=op.f("pk_verifications")),
        sa.UniqueConstraint("org_id", "nonce", name=op.f("uq_verifications_org_id_nonce")),
    )
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_verifications_customer", ["org_id", "customer_id", "created_at"], unique=False
        )

    op.create_table(
        "capture_bundles",
        sa.Column("bundle_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("verification_id", sa.String(length=40), nullable=False),
        sa.Column("retention_class", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data_key_id", sa.String(length=40), nullable=False),
        sa.Column("sealed_payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_capture_bundles_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["data_key_id"],
            ["data_keys.key_id"],
            name=op.f("fk_capture_bundles_data_key_id_data_keys"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.org_id"], name=op.f("fk_capture_bundles_org_id_orgs")
        ),
        sa.ForeignKeyConstraint(
            ["verification_id"],
            ["verifications.verification_id"],
            name=op.f("fk_capture_bundles_verification_id_verifications"),
        ),
        sa.PrimaryKeyConstraint("bundle_id", name=op.f("pk_capture_bundles")),
    )
    with op.batch_alter_table("capture_bundles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_capture_bundles_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index("ix_capture_bundles_expires", ["expires_at"], unique=False)

    op.create_table(
        "review_items",
        sa.Column("review_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("verification_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_review_items_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.org_id"], name=op.f("fk_review_items_org_id_orgs")
        ),
        sa.ForeignKeyConstraint(
            ["verification_id"],
            ["verifications.verification_id"],
            name=op.f("fk_review_items_verification_id_verifications"),
        ),
        sa.PrimaryKeyConstraint("review_id", name=op.f("pk_review_items")),
    )
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_review_items_org_status", ["org_id", "status", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.drop_index("ix_review_items_org_status")

    op.drop_table("review_items")
    with op.batch_alter_table("capture_bundles", schema=None) as batch_op:
        batch_op.drop_index("ix_capture_bundles_expires")
        batch_op.drop_index(batch_op.f("ix_capture_bundles_customer_id"))

    op.drop_table("capture_bundles")
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.drop_index("ix_verifications_customer")

    op.drop_table("verifications")
    with op.batch_alter_table("tier_events", schema=None) as batch_op:
        batch_op.drop_index("ix_tier_events_org_created")
        batch_op.drop_index(batch_op.f("ix_tier_events_customer_id"))

    op.drop_table("tier_events")
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollments_gallery")
        batch_op.drop_index("ix_enrollments_customer")

    op.drop_table("enrollments")
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhooks_org_id"))

    op.drop_table("webhooks")
    with op.batch_alter_table("used_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_used_nonces_expires_at"))

    op.drop_table("used_nonces")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_customer_id"))

    op.drop_table("devices")
    with op.batch_alter_table("data_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_data_keys_owner")

    op.drop_table("data_keys")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_org_nik_hash")
        batch_op.drop_index("ix_customers_org_created")

    op.drop_table("customers")
    with op.batch_alter_table("challenges", schema=None) as batch_op:
        batch_op.drop_index("ix_challenges_expires")

    op.drop_table("challenges")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempts_org_created")
        batch_op.drop_index("ix_attempts_customer")

    op.drop_table("attempts")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_org_id"))

    op.drop_table("api_keys")
    op.drop_table("orgs")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_tenant_time")
        batch_op.drop_index("ix_audit_tenant_subject")
        batch_op.drop_index("ix_audit_tenant_action")

    op.drop_table("audit_entries")
    op.drop_table("audit_chain_head")
