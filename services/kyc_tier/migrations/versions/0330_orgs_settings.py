"""kyc-tier: organisation settings by route (issue 19): when the Dukcapil
evidence secret was last set, the organisation's default webhook endpoint;
webhook endpoints deleted (kept for their delivery log, no longer served)
and why one was disabled.

Revision ID: 0330_orgs_settings
Revises: 0320_idem_idempotency
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import identity_store.types

revision = "0330_orgs_settings"
down_revision = "0320_idem_idempotency"
branch_labels = None
depends_on = None


def _when(name: str) -> sa.Column:
    return sa.Column(name, identity_store.types.UTCDateTime(timezone=True), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("orgs", schema=None) as batch_op:
        batch_op.add_column(_when("evidence_secret_updated_at"))
        batch_op.add_column(sa.Column("default_webhook_id", sa.String(length=40), nullable=True))
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("disabled_reason", sa.String(length=16), nullable=False, server_default="")
        )
        batch_op.add_column(_when("deleted_at"))


def downgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("disabled_reason")
    with op.batch_alter_table("orgs", schema=None) as batch_op:
        batch_op.drop_column("default_webhook_id")
        batch_op.drop_column("evidence_secret_updated_at")
