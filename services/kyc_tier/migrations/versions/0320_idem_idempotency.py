"""kyc-tier: idempotent requests (issue 19): a capture attempt keeps its nonce
and canonical digest (a retry after a cut-short capture resumes it), and the
`Idempotency-Key` of other mutations is kept 24 h with its first response.

Revision ID: 0320_idem_idempotency
Revises: 0310_lifecycle_retention
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import identity_store.types

revision = "0320_idem_idempotency"
down_revision = "0310_lifecycle_retention"
branch_labels = None
depends_on = None


def _when(name: str) -> sa.Column:
    return sa.Column(name, identity_store.types.UTCDateTime(timezone=True), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("nonce", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("bundle_sha256", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_attempts_nonce", ["org_id", "nonce"], unique=False)

    op.create_table(
        "idempotent_requests",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=200), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=True),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        _when("created_at"),
        _when("expires_at"),
        sa.PrimaryKeyConstraint("org_id", "idempotency_key", name=op.f("pk_idempotent_requests")),
    )
    with op.batch_alter_table("idempotent_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotent_requests_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_idempotent_requests_customer_id"), ["customer_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("idempotent_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotent_requests_customer_id"))
        batch_op.drop_index(batch_op.f("ix_idempotent_requests_expires_at"))
    op.drop_table("idempotent_requests")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_attempts_nonce")
        batch_op.drop_column("bundle_sha256")
        batch_op.drop_column("nonce")
