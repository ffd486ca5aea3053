"""face_match: a callback records when its last attempt was made (last_attempt_at)

Revision ID: fm0004
Revises: fm0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import identity_store.types

revision = "fm0004"
down_revision = "fm0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fm_callbacks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "last_attempt_at", identity_store.types.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("fm_callbacks", schema=None) as batch_op:
        batch_op.drop_column("last_attempt_at")
