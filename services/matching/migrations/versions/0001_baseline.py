"""matching: baseline (the schema of matching's tables under the single history
at 0005, without references to kyc-tier's tables, with its data keys in a
table of its own, matching_data_keys)

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import identity_store.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gallery_heads",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("last_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("updated_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_gallery_heads")),
    )
    op.create_table(
        "matching_data_keys",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("kek_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rewrapped_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("destroyed_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_matching_data_keys")),
    )
    with op.batch_alter_table("matching_data_keys", schema=None) as batch_op:
        batch_op.create_index(
            "ix_matching_data_keys_owner", ["org_id", "customer_id"], unique=False
        )

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
        sa.Column(
            "gallery_seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            server_default="0",
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["data_key_id"],
            ["matching_data_keys.key_id"],
            name=op.f("fk_enrollments_data_key_id_matching_data_keys"),
        ),
        sa.PrimaryKeyConstraint("enrollment_id", name=op.f("pk_enrollments")),
    )
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index("ix_enrollments_customer", ["org_id", "customer_id"], unique=False)
        batch_op.create_index(
            "ix_enrollments_gallery", ["org_id", "model_id", "active"], unique=False
        )
        batch_op.create_index("ix_enrollments_gallery_seq", ["org_id", "gallery_seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollments_gallery_seq")
        batch_op.drop_index("ix_enrollments_gallery")
        batch_op.drop_index("ix_enrollments_customer")

    op.drop_table("enrollments")
    with op.batch_alter_table("matching_data_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_matching_data_keys_owner")

    op.drop_table("matching_data_keys")
    op.drop_table("gallery_heads")
