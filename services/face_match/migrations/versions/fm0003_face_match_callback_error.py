"""face_match: a callback records why its last attempt failed (last_error)

Revision ID: fm0003
Revises: fm0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "fm0003"
down_revision = "fm0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fm_callbacks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_error", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fm_callbacks", schema=None) as batch_op:
        batch_op.drop_column("last_error")
