"""kyc-tier: trust fixes of issue 10 (review item details for a duplicate face;
erasures and their steps; legal hold)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import identity_store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, identity_store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("details", JSON, nullable=False, server_default=sa.text("'{}'"))
        )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(_when("legal_hold_since"))
        batch_op.add_column(sa.Column("legal_hold_reason", sa.String(length=64), nullable=True))
    op.create_table(
        "erasures",
        sa.Column("erasure_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        _when("requested_at", nullable=False),
        _when("completed_at"),
        _when("claimed_until"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_erasures_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.org_id"], name=op.f("fk_erasures_org_id_orgs")),
        sa.PrimaryKeyConstraint("erasure_id", name=op.f("pk_erasures")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_erasures_customer_id")),
    )
    with op.batch_alter_table("erasures", schema=None) as batch_op:
        batch_op.create_index("ix_erasures_org_requested", ["org_id", "requested_at"], unique=False)
    op.create_table(
        "erasure_steps",
        sa.Column("erasure_id", sa.String(length=40), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _when("done_at"),
        sa.Column("result", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["erasure_id"],
            ["erasures.erasure_id"],
            name=op.f("fk_erasure_steps_erasure_id_erasures"),
        ),
        sa.PrimaryKeyConstraint("erasure_id", "step", name=op.f("pk_erasure_steps")),
    )


def downgrade() -> None:
    op.drop_table("erasure_steps")
    with op.batch_alter_table("erasures", schema=None) as batch_op:
        batch_op.drop_index("ix_erasures_org_requested")
    op.drop_table("erasures")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("legal_hold_reason")
        batch_op.drop_column("legal_hold_since")
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.drop_column("details")
