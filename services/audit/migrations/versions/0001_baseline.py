"""audit: baseline (the schema of audit's tables under the single history at
0005; the chain's head row exists from the start, so the first appenders
serialise on its row lock like every later one)

Revision ID: 0001
Revises:
Create Date: 2026-11-26
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
    head = op.create_table(
        "audit_chain_head",
        sa.Column("chain_id", sa.String(length=32), nullable=False),
        sa.Column(
            "last_sequence", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("last_hmac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", name=op.f("pk_audit_chain_head")),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column(
            "sequence",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("entry_hmac", sa.String(length=64), nullable=False),
        sa.Column(
            "entry_recorded_at", identity_store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("checkpoint_hmac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_audit_checkpoints")),
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
        batch_op.create_index("ix_audit_tenant_sequence", ["tenant_id", "sequence"], unique=False)
        batch_op.create_index("ix_audit_tenant_subject", ["tenant_id", "subject"], unique=False)
        batch_op.create_index("ix_audit_tenant_time", ["tenant_id", "recorded_at"], unique=False)

    op.bulk_insert(head, [{"chain_id": "main", "last_sequence": 0, "last_hmac": ""}])


def downgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_tenant_time")
        batch_op.drop_index("ix_audit_tenant_subject")
        batch_op.drop_index("ix_audit_tenant_sequence")
        batch_op.drop_index("ix_audit_tenant_action")

    op.drop_table("audit_entries")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_chain_head")
