"""kyc-tier: the analyst console (issue 11): console users, sessions,
passkeys, WebAuthn challenges, each organisation's console policy, and the
customer search token index (filled here for the customers already stored)

Revision ID: 0100_console
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import identity_store.types

revision = "0100_console"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, identity_store.types.UTCDateTime(timezone=True), nullable=nullable)


def _id(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=40), nullable=nullable)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.{column}"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def upgrade() -> None:
    op.create_table(
        "console_users",
        _id("user_id"),
        _id("org_id"),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("roles", JSON, nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        _when("next_login_at"),
        _when("locked_until"),
        _when("created_at", nullable=False),
        _when("disabled_at"),
        _fk("console_users", "org_id", "orgs"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_console_users")),
        sa.UniqueConstraint("email", name=op.f("uq_console_users_email")),
    )
    with op.batch_alter_table("console_users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_console_users_org_id"), ["org_id"], unique=False)
    op.create_table(
        "console_sessions",
        _id("session_id"),
        _id("user_id"),
        _id("org_id"),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_hash", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        _when("created_at", nullable=False),
        _when("expires_at", nullable=False),
        _when("revoked_at"),
        _fk("console_sessions", "org_id", "orgs"),
        _fk("console_sessions", "user_id", "console_users"),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_console_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_sessions_token_hash")),
    )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_console_sessions_user", ["user_id", "created_at"], unique=False)
    op.create_table(
        "console_passkeys",
        _id("passkey_id"),
        _id("user_id"),
        _id("org_id"),
        sa.Column("credential_id", sa.String(length=1400), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        _when("created_at", nullable=False),
        _when("last_used_at"),
        _fk("console_passkeys", "org_id", "orgs"),
        _fk("console_passkeys", "user_id", "console_users"),
        sa.PrimaryKeyConstraint("passkey_id", name=op.f("pk_console_passkeys")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_console_passkeys_credential_id")),
    )
    with op.batch_alter_table("console_passkeys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_console_passkeys_user_id"), ["user_id"], unique=False)
    op.create_table(
        "console_challenges",
        _id("ceremony_id"),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        _id("user_id", nullable=True),
        sa.Column("challenge", sa.String(length=128), nullable=False),
        _when("expires_at", nullable=False),
        _when("used_at"),
        _fk("console_challenges", "user_id", "console_users"),
        sa.PrimaryKeyConstraint("ceremony_id", name=op.f("pk_console_challenges")),
    )
    op.create_table(
        "console_policies",
        _id("org_id"),
        sa.Column("passkey_required", sa.Boolean(), nullable=False),
        _fk("console_policies", "org_id", "orgs"),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_console_policies")),
    )

    op.create_table(
        "customer_search_tokens",
        _id("customer_id"),
        sa.Column("token", sa.String(length=64), nullable=False),
        _id("org_id"),
        _fk("customer_search_tokens", "customer_id", "customers"),
        _fk("customer_search_tokens", "org_id", "orgs"),
        sa.PrimaryKeyConstraint("customer_id", "token", name=op.f("pk_customer_search_tokens")),
    )
    with op.batch_alter_table("customer_search_tokens", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customer_search_tokens_org_token", ["org_id", "token"], unique=False
        )
    _index_existing_customers()


def _index_existing_customers() -> None:
    from services.kyc_tier.search_index import tokens_of

    bind = op.get_bind()
    customers = sa.table(
        "customers",
        sa.column("customer_id"),
        sa.column("org_id"),
        sa.column("full_name"),
        sa.column("email"),
    )
    index = sa.table(
        "customer_search_tokens", sa.column("customer_id"), sa.column("token"), sa.column("org_id")
    )
    rows = bind.execute(
        sa.select(
            customers.c.customer_id, customers.c.org_id, customers.c.full_name, customers.c.email
        )
    )
    values = [
        {"customer_id": customer_id, "token": token, "org_id": org_id}
        for customer_id, org_id, name, email in rows
        for token in tokens_of(name or "", email or "")
    ]
    if values:
        op.bulk_insert(index, values)


def downgrade() -> None:
    with op.batch_alter_table("customer_search_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_search_tokens_org_token")
    op.drop_table("customer_search_tokens")
    op.drop_table("console_policies")
    op.drop_table("console_challenges")
    with op.batch_alter_table("console_passkeys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_passkeys_user_id"))
    op.drop_table("console_passkeys")
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_console_sessions_user")
    op.drop_table("console_sessions")
    with op.batch_alter_table("console_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_users_org_id"))
    op.drop_table("console_users")
