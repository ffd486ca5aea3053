"""kyc-tier: the capture digests of customers erased before erasures dropped
them (bundles.forget_digests). Data only: the verification and attempt rows
of every erased customer lose their plain SHA-256 digests of the bundle and
images (bundle_sha256, input_hashes), as a new erasure's personal data step
does. Nothing to undo: the digests are gone by design.

Revision ID: 0360_erased_capture_digests
Revises: 0350_console_login_throttles
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0360_erased_capture_digests"
down_revision = "0350_console_login_throttles"
branch_labels = None
depends_on = None

_customers = sa.table("customers", sa.column("customer_id"), sa.column("status"))
_erased = sa.select(_customers.c.customer_id).where(_customers.c.status == "erased")


def upgrade() -> None:
    verifications = sa.table(
        "verifications",
        sa.column("customer_id"),
        sa.column("bundle_sha256"),
        sa.column("input_hashes", sa.JSON()),
    )
    op.execute(
        verifications.update()
        .where(verifications.c.customer_id.in_(_erased))
        .values(bundle_sha256=None, input_hashes={})
    )
    attempts = sa.table("attempts", sa.column("customer_id"), sa.column("bundle_sha256"))
    op.execute(
        attempts.update()
        .where(attempts.c.customer_id.in_(_erased), attempts.c.bundle_sha256.is_not(None))
        .values(bundle_sha256=None)
    )


def downgrade() -> None:
    pass
