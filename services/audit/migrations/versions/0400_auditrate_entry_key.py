"""audit: an optional client key per entry (issue 15), unique, so a redelivered
AppendBatch entry returns the existing entry instead of being chained twice.
Expand only: code at 0001 inserts without it (NULL), so it stays compatible.

Revision ID: 0400_auditrate_entry_key
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0400_auditrate_entry_key"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("entry_key", sa.String(length=128), nullable=True))
        batch_op.create_index("ix_audit_entry_key", ["entry_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entry_key")
        batch_op.drop_column("entry_key")
