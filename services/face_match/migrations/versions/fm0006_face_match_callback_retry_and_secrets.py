"""face_match: callbacks retried for a horizon from when they were queued
(queued_at), and rotatable per-organisation callback signing secrets
(fm_callback_secrets)

Revision ID: fm0006
Revises: fm0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import identity_store.types
from identity_store.types import utcnow

revision = "fm0006"
down_revision = "fm0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fm_callbacks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("queued_at", identity_store.types.UTCDateTime(timezone=True), nullable=True)
        )
    # A callback already written was queued when its submission ended.
    op.execute(
        "UPDATE fm_callbacks SET queued_at = (SELECT s.completed_at FROM fm_submissions s "
        "WHERE s.submission_id = fm_callbacks.submission_id) WHERE queued_at IS NULL"
    )
    op.execute("UPDATE fm_callbacks SET queued_at = next_attempt_at WHERE queued_at IS NULL")
    secrets = op.create_table(
        "fm_callback_secrets",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("previous_sealed", sa.LargeBinary(), nullable=True),
        sa.Column(
            "previous_expires_at", identity_store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_fm_callback_secrets")),
    )
    # Every organisation that may hold the secret derived from the service key
    # (it has or had a submission) keeps signing with it until it rotates
    # (secret_sealed NULL); an organisation new to Face Match gets a random one.
    orgs = op.get_bind().execute(
        sa.text("SELECT org_id FROM fm_submissions UNION SELECT org_id FROM fm_callbacks")
    )
    now = utcnow()
    rows = [{"org_id": org_id, "created_at": now} for (org_id,) in orgs]
    if rows:
        op.bulk_insert(secrets, rows)


def downgrade() -> None:
    op.drop_table("fm_callback_secrets")
    with op.batch_alter_table("fm_callbacks", schema=None) as batch_op:
        batch_op.drop_column("queued_at")
