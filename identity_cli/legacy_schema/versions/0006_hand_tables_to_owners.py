"""hand every table to its owning service

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26

The last revision of the single history. Afterwards the schema equals the
union of the services' own baselines, and `identity migrate` stamps those and
drops `alembic_version`:

- the shared `data_keys` splits into kyc-tier's `kyc_data_keys` (NIK and
  capture-bundle keys) and matching's `matching_data_keys` (template keys);
  rows are moved, not re-created, so every sealed record still opens and a
  destroyed key stays destroyed;
- the references from matching's and liveness's tables to kyc-tier's `orgs`
  (and from `enrollments` to the shared `data_keys`) are dropped: no service
  depends on another's tables any more.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import identity_store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

KEY_COLUMNS = (
    "key_id, org_id, customer_id, purpose, wrapped_key, kek_id, "
    "created_at, rewrapped_at, destroyed_at"
)
# Tables that referred to kyc-tier's organisations from another service.
FOREIGN_ORG_REFERENCES = ("enrollments", "gallery_heads", "devices", "challenges", "used_nonces")


def _key_table(name: str, *constraints: sa.Constraint) -> None:
    op.create_table(
        name,
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("kek_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rewrapped_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("destroyed_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=f"pk_{name}"),
        *constraints,
    )
    op.create_index(f"ix_{name}_owner", name, ["org_id", "customer_id"], unique=False)


def _repoint_key_reference(table: str, old: str, new: str) -> None:
    with op.batch_alter_table(table) as batch_op:
        batch_op.drop_constraint(f"fk_{table}_data_key_id_{old}", type_="foreignkey")
        batch_op.create_foreign_key(
            f"fk_{table}_data_key_id_{new}", new, ["data_key_id"], ["key_id"]
        )


def upgrade() -> None:
    _key_table(
        "kyc_data_keys",
        sa.ForeignKeyConstraint(["org_id"], ["orgs.org_id"], name="fk_kyc_data_keys_org_id_orgs"),
    )
    _key_table("matching_data_keys")
    op.execute(
        f"INSERT INTO kyc_data_keys ({KEY_COLUMNS}) "
        f"SELECT {KEY_COLUMNS} FROM data_keys WHERE purpose <> 'template'"
    )
    op.execute(
        f"INSERT INTO matching_data_keys ({KEY_COLUMNS}) "
        f"SELECT {KEY_COLUMNS} FROM data_keys WHERE purpose = 'template'"
    )
    _repoint_key_reference("capture_bundles", "data_keys", "kyc_data_keys")
    _repoint_key_reference("enrollments", "data_keys", "matching_data_keys")
    for table in FOREIGN_ORG_REFERENCES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_org_id_orgs", type_="foreignkey")
    op.drop_index("ix_data_keys_owner", table_name="data_keys")
    op.drop_table("data_keys")


def downgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("kek_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", identity_store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rewrapped_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("destroyed_at", identity_store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.org_id"], name="fk_data_keys_org_id_orgs"),
        sa.PrimaryKeyConstraint("key_id", name="pk_data_keys"),
    )
    op.create_index("ix_data_keys_owner", "data_keys", ["org_id", "customer_id"], unique=False)
    for source in ("kyc_data_keys", "matching_data_keys"):
        op.execute(f"INSERT INTO data_keys ({KEY_COLUMNS}) SELECT {KEY_COLUMNS} FROM {source}")
    for table in FOREIGN_ORG_REFERENCES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.create_foreign_key(f"fk_{table}_org_id_orgs", "orgs", ["org_id"], ["org_id"])
    _repoint_key_reference("enrollments", "matching_data_keys", "data_keys")
    _repoint_key_reference("capture_bundles", "kyc_data_keys", "data_keys")
    for source in ("matching_data_keys", "kyc_data_keys"):
        op.drop_index(f"ix_{source}_owner", table_name=source)
        op.drop_table(source)
