"""face_match: the data keys of the sealed images in the local bucket (fm_data_keys)

Revision ID: fm0007
Revises: fm0006
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import identity_store.types

revision = "fm0007"
down_revision = "fm0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fm_data_keys",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("kek_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rewrapped_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("destroyed_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_fm_data_keys")),
    )
    with op.batch_alter_table("fm_data_keys", schema=None) as batch_op:
        batch_op.create_index("ix_fm_data_keys_owner", ["org_id", "customer_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fm_data_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_fm_data_keys_owner")
    op.drop_table("fm_data_keys")
