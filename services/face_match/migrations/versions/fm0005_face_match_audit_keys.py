"""face_match: audit entry keys that are never reused; an audit outbox for OAuth clients

Revision ID: fm0005
Revises: fm0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import identity_store.types

revision = "fm0005"
down_revision = "fm0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fm_transitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audit_key", sa.String(length=128), nullable=True))
    # A row a relay had claimed but not settled may already be in the chain
    # under the old key `face-match:outbox:<sequence>`: it keeps that key, so
    # that its redelivery is not chained twice. Rows never claimed keep NULL
    # (the relay keys them `face-match:<submission id>:<sequence>`, unique).
    op.execute(
        "UPDATE fm_transitions SET audit_key = 'face-match:outbox:' || "
        "CAST(sequence AS VARCHAR(20)) "
        "WHERE audited_at IS NULL AND audit_claimed_until IS NOT NULL"
    )
    op.create_table(
        "fm_audit_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("audit_key", sa.String(length=128), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("audited_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "audit_claimed_until", identity_store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fm_audit_outbox")),
    )
    with op.batch_alter_table("fm_audit_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_fm_audit_outbox_unaudited", ["audited_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fm_audit_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_fm_audit_outbox_unaudited")
    op.drop_table("fm_audit_outbox")
    with op.batch_alter_table("fm_transitions", schema=None) as batch_op:
        batch_op.drop_column("audit_key")
