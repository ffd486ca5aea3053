"""audit: an entry's redaction MAC (an erased customer's evidence hashes
removed, services/audit/redaction.py). Expand only: two nullable columns;
code before it never redacts and reads entries without them.

Revision ID: 0410_evidence_redaction
Revises: 0400_auditrate_entry_key
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0410_evidence_redaction"
down_revision = "0400_auditrate_entry_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("redaction_hmac", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("redaction_key_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_column("redaction_key_id")
        batch_op.drop_column("redaction_hmac")
