"""kyc-tier: the capture digests an erased customer's audit entries still
carry in the audit outbox (bundles.forget_digests now blanks them). Data
only: every outbox row about an erased customer (`customer:<id>`) loses its
evidence hashes, as a new erasure's personal data step does. Nothing to
undo: the digests are gone by design.

Revision ID: 0380_erased_outbox_digests
Revises: 0370_org_bound_nik_index
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0380_erased_outbox_digests"
down_revision = "0370_org_bound_nik_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    customers = sa.table(
        "customers", sa.column("org_id"), sa.column("customer_id"), sa.column("status")
    )
    outbox = sa.table(
        "audit_outbox",
        sa.column("org_id"),
        sa.column("subject"),
        sa.column("evidence_hashes", sa.JSON()),
    )
    about_erased = (
        sa.select(customers.c.customer_id)
        .where(
            customers.c.status == "erased",
            customers.c.org_id == outbox.c.org_id,
            outbox.c.subject == sa.literal("customer:") + customers.c.customer_id,
        )
        .exists()
    )
    op.execute(outbox.update().where(about_erased).values(evidence_hashes={}))


def downgrade() -> None:
    pass
