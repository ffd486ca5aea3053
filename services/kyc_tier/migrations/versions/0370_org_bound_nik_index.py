"""kyc-tier: the NIK's lookup hash is bound to the organisation.

`customers.nik_index_version` records how `nik_hash` was made. Rows hashed
before (NULL) hold one hash per person across every organisation, which
links a person across partners for anyone reading the table; kyc-tier
re-indexes them at start-up (recovery.LegacyNikIndex: it opens each NIK,
which this migration cannot), and search finds both forms meanwhile.
Downgrading keeps the new hashes, which the older release cannot find by
NIK search.

Revision ID: 0370_org_bound_nik_index
Revises: 0360_erased_capture_digests
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0370_org_bound_nik_index"
down_revision = "0360_erased_capture_digests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(sa.Column("nik_index_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_column("nik_index_version")
