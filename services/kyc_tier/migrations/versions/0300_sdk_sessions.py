"""kyc-tier: browser SDK access (issue 18): single-customer SDK session
tokens (peppered hashes) and each organisation's SDK origins (CORS).

Revision ID: 0300_sdk_sessions
Revises: 0200_webhooks
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import identity_store.types

revision = "0300_sdk_sessions"
down_revision = "0200_webhooks"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, identity_store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "sdk_sessions",
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        _when("created_at", nullable=False),
        _when("expires_at", nullable=False),
        _when("revoked_at"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_sdk_sessions_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.org_id"], name=op.f("fk_sdk_sessions_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_sdk_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_sdk_sessions_token_hash")),
    )
    with op.batch_alter_table("sdk_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sdk_sessions_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_sdk_sessions_customer_id"), ["customer_id"], unique=False
        )
    op.create_table(
        "sdk_origins",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("origin", sa.String(length=255), nullable=False),
        _when("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.org_id"], name=op.f("fk_sdk_origins_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("org_id", "origin", name=op.f("pk_sdk_origins")),
    )
    with op.batch_alter_table("sdk_origins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sdk_origins_origin"), ["origin"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sdk_origins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sdk_origins_origin"))
    op.drop_table("sdk_origins")
    with op.batch_alter_table("sdk_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sdk_sessions_customer_id"))
        batch_op.drop_index(batch_op.f("ix_sdk_sessions_org_id"))
    op.drop_table("sdk_sessions")
