"""kyc-tier: data lifecycle (issue 14): per-organisation retention overrides
(only ever longer than the declared period), and the re-enrollment flag a
breach revocation sets on a customer.

Revision ID: 0310_lifecycle_retention
Revises: 0300_sdk_sessions
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import identity_store.types

revision = "0310_lifecycle_retention"
down_revision = "0300_sdk_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "reenrollment_required_at",
                identity_store.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
    op.create_table(
        "retention_overrides",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("data_class", sa.String(length=32), nullable=False),
        sa.Column("period_days", sa.Integer(), nullable=False),
        sa.Column("basis", sa.String(length=200), nullable=False),
        sa.Column("set_by", sa.String(length=128), nullable=False),
        sa.Column("set_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.org_id"], name=op.f("fk_retention_overrides_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("org_id", "data_class", name=op.f("pk_retention_overrides")),
    )


def downgrade() -> None:
    op.drop_table("retention_overrides")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("reenrollment_required_at")
