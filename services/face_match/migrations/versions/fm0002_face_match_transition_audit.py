"""face_match: transitions are appended to the audit chain (outbox columns)

Revision ID: fm0002
Revises: fm0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import identity_store.types

revision = "fm0002"
down_revision = "fm0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fm_transitions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("audited_at", identity_store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "audit_claimed_until",
                identity_store.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.create_index(
            "ix_fm_transitions_unaudited", ["audited_at", "sequence"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("fm_transitions", schema=None) as batch_op:
        batch_op.drop_index("ix_fm_transitions_unaudited")
        batch_op.drop_column("audit_claimed_until")
        batch_op.drop_column("audited_at")
