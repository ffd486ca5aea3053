"""Alembic environment: the metadata of identity_store.models, batch mode on SQLite."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from identity_store.db import make_engine
from identity_store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = make_engine(url) if not url.startswith("sqlite") else None
    if engine is None:
        # SQLite: a plain engine, without BEGIN IMMEDIATE (alembic manages DDL).
        from sqlalchemy import create_engine

        engine = create_engine(url, poolclass=pool.NullPool, connect_args={"timeout": 15})
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
