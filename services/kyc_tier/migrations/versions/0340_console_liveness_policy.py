"""kyc-tier: per-organisation liveness policy (issue 13): pinned PAD models,
PAD threshold, and the flash-check and shadow feature switches.

Revision ID: 0340_console_liveness_policy
Revises: 0330_orgs_settings
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import identity_store.types

revision = "0340_console_liveness_policy"
down_revision = "0330_orgs_settings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_liveness_policies",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("pad_models", sa.JSON(), nullable=False),
        sa.Column("pad_threshold", sa.Float(), nullable=True),
        sa.Column("flash_check", sa.Boolean(), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("updated_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.org_id"], name=op.f("fk_org_liveness_policies_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_org_liveness_policies")),
    )


def downgrade() -> None:
    op.drop_table("org_liveness_policies")
