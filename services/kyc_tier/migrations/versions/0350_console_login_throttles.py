"""kyc-tier: the console's password sign-in throttle per email digest
(console_throttle.py), for known and unknown emails alike. Expand only: the
per-user columns it replaces (console_users.failed_logins, next_login_at,
locked_until) stay while a release that reads them may still run.

Revision ID: 0350_console_login_throttles
Revises: 0340_console_liveness_policy
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import identity_store.types

revision = "0350_console_login_throttles"
down_revision = "0340_console_liveness_policy"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, identity_store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "console_login_throttles",
        sa.Column("email_digest", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        _when("next_login_at"),
        _when("locked_until"),
        _when("updated_at", nullable=False),
        _when("expires_at", nullable=False),
        sa.PrimaryKeyConstraint("email_digest", name=op.f("pk_console_login_throttles")),
    )
    with op.batch_alter_table("console_login_throttles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_console_login_throttles_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("console_login_throttles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_login_throttles_expires_at"))
    op.drop_table("console_login_throttles")
