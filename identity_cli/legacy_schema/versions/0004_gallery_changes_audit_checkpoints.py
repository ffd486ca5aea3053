"""matching: gallery change numbers; audit: checkpoints, keyset index, chain head

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-22

- enrollments.gallery_seq + gallery_heads: matching replicas converge on the
  database by catching up on rows changed above their high-water mark.
- audit_checkpoints: signed anchors; verification after a retention purge
  starts from one.
- ix_audit_tenant_sequence: keyset pagination of a tenant's entries.
- the audit chain's head row ("main") exists from the start, so the first
  appenders serialise on its row lock like every later one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import identity_store.types

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
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
        "gallery_heads",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("last_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("updated_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.org_id"], name=op.f("fk_gallery_heads_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_gallery_heads")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_audit_tenant_sequence", ["tenant_id", "sequence"], unique=False)

    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "gallery_seq",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                server_default="0",
                nullable=False,
            )
        )
        batch_op.create_index("ix_enrollments_gallery_seq", ["org_id", "gallery_seq"], unique=False)

    head = sa.table(
        "audit_chain_head",
        sa.column("chain_id", sa.String),
        sa.column("last_sequence", sa.BigInteger),
        sa.column("last_hmac", sa.String),
    )
    connection = op.get_bind()
    exists = connection.execute(sa.select(head.c.chain_id).where(head.c.chain_id == "main")).first()
    if exists is None:
        op.bulk_insert(head, [{"chain_id": "main", "last_sequence": 0, "last_hmac": ""}])


def downgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollments_gallery_seq")
        batch_op.drop_column("gallery_seq")

    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_tenant_sequence")

    op.drop_table("gallery_heads")
    op.drop_table("audit_checkpoints")
