"""kyc-tier: the audit entries of capture-SDK sessions, which the audit
service refused (its actor rule knew no `sdk_session:` kind) and the relay
set aside, are queued again. Data only: their rejection is cleared, so the
relay delivers them in order (each under its outbox key: never twice).

Revision ID: 0390_requeue_sdk_session_audit
Revises: 0380_erased_outbox_digests
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0390_requeue_sdk_session_audit"
down_revision = "0380_erased_outbox_digests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox = sa.table("audit_outbox", sa.column("actor"), sa.column("rejected_reason"))
    op.execute(
        outbox.update()
        .where(
            outbox.c.actor.like("sdk\\_session:%", escape="\\"),
            outbox.c.rejected_reason == "INVALID_FIELD",
        )
        .values(rejected_reason=None)
    )


def downgrade() -> None:
    pass
