"""A generic Alembic runner: one migration history per owner of tables.

Each service that stores data owns its tables and their history
(`services/<svc>/migrations/`, described by a `History`). Every history
records its revision in a version table of its own, so one database may host
them all (the one-machine run, or one PostgreSQL database in a cluster) while
each service migrates, and checks, only what it owns.

This module knows no service: callers pass the histories (the `identity`
command line lists them all).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, pool

from identity_store.db import Database, make_engine, normalise_url


@dataclass(frozen=True)
class History:
    """One owner's migration history."""

    # Who owns the tables: the service's name ("kyc-tier").
    owner: str
    # Alembic's script location: env.py, script.py.mako, versions/.
    directory: Path
    # The owner's tables (what autogenerate and the schema check compare).
    metadata: MetaData
    # Where the database records the history's revision.
    version_table: str

    def owns(self, table_name: str | None) -> bool:
        return table_name in self.metadata.tables


def alembic_config(url: str, history: History) -> Config:
    config = Config()
    config.set_main_option("script_location", str(history.directory))
    # '%' must be escaped for configparser interpolation.
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def script_directory(history: History) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://", history))


def upgrade(url: str, history: History, revision: str = "head") -> None:
    command.upgrade(alembic_config(url, history), revision)


def downgrade(url: str, history: History, revision: str) -> None:
    command.downgrade(alembic_config(url, history), revision)


def head_revision(history: History) -> str:
    heads = script_directory(history).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"{history.owner}: migrations have {len(heads)} heads; merge them")
    return heads[0]


def base_revision(history: History) -> str:
    """The history's first revision (its baseline)."""
    bases = script_directory(history).get_bases()
    if len(bases) != 1:
        raise RuntimeError(f"{history.owner}: migrations have {len(bases)} bases")
    return bases[0]


def _context(connection: Connection, history: History, **opts: Any) -> MigrationContext:
    return MigrationContext.configure(
        connection, opts={"version_table": history.version_table, **opts}
    )


def revision_of(connection: Connection, history: History) -> str | None:
    return _context(connection, history).get_current_revision()


def current_revision(url: str, history: History) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return revision_of(connection, history)
    finally:
        engine.dispose()


def is_at_head(url: str, history: History) -> bool:
    return current_revision(url, history) == head_revision(history)


async def require_head(database: Database, history: History, service: str) -> None:
    """Refuse to build a service on tables behind its migrations (the database is
    closed): the operator runs `identity migrate` first."""
    if not await asyncio.to_thread(is_at_head, database.url, history):
        database.dispose()
        raise RuntimeError(
            f"{service}: its tables are not at the head of its migrations; "
            "run `identity migrate` first"
        )


def stamp(connection: Connection, history: History, revision: str) -> None:
    """Record `revision` as the history's current one without running anything,
    inside the caller's transaction."""
    _context(connection, history).stamp(script_directory(history), revision)


def schema_differences(url: str, history: History) -> list[Any]:
    """What differs between the database and the history's models, looking
    only at the history's own tables (empty when they agree)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = _context(
                connection, history, compare_type=True, include_name=_own_names(history)
            )
            return list(compare_metadata(context, history.metadata))
    finally:
        engine.dispose()


def _own_names(history: History) -> Any:
    def include_name(name: str | None, kind: str, parent_names: Any) -> bool:
        # Other owners' tables (and their indexes) share the database: not ours to compare.
        return kind != "table" or history.owns(name)

    return include_name


# --- the Alembic environment (each history's env.py calls run_environment) -------


def _transactional_sqlite(url: str) -> Engine:
    """A SQLite engine whose transactions include DDL (pysqlite would otherwise
    commit each CREATE/ALTER on its own), so a failed migration leaves nothing
    half done."""
    engine = create_engine(
        url, poolclass=pool.NullPool, connect_args={"timeout": 15}, hide_parameters=True
    )

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


def migration_engine(url: str) -> Engine:
    url = normalise_url(url)
    return _transactional_sqlite(url) if url.startswith("sqlite") else make_engine(url)


@contextmanager
def migration_connection(url: str) -> Iterator[Connection]:
    """One connection in one transaction (DDL included), committed on success."""
    engine = migration_engine(url)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def run_environment(history: History) -> None:
    """The body of a history's env.py: migrate its own tables, record its
    revision in its own version table, batch mode on SQLite."""
    from alembic import context

    config = context.config
    options: dict[str, Any] = {
        "target_metadata": history.metadata,
        "version_table": history.version_table,
        "include_name": _own_names(history),
        "compare_type": True,
    }
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"),
            literal_binds=True,
            render_as_batch=True,
            **options,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = migration_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                render_as_batch=connection.dialect.name == "sqlite",
                **options,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()
