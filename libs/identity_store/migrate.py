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
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
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
    # The oldest revision whose code still runs on this history's newest
    # schema (docs/migrations.md, expand/contract): every migration after it
    # only expands (new tables, nullable or defaulted columns, indexes). A
    # contract migration (drop, rename, tighten) moves it to itself, one
    # release after the code stopped using what it removes. None: the head.
    minimum_compatible: str | None = None
    # What the service's database role may do per table (identity_store.grants);
    # tables not listed get SELECT, INSERT, UPDATE, DELETE.
    privileges: Mapping[str, tuple[str, ...]] | None = None

    @property
    def compat_table(self) -> str:
        """Where `identity migrate` records the schema's minimum compatible
        revision, for code older than the schema to read (identity_store.compat)."""
        return f"{self.version_table}_compat"

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


async def require_compatible(database: Database, history: History, service: str) -> None:
    """Refuse to build a service on tables it cannot run on (the database is
    closed): behind its migrations (the operator runs `identity migrate`
    first), or newer and contracted past this release (identity_store.compat)."""
    from identity_store.compat import schema_problem

    problem = await asyncio.to_thread(schema_problem, database.url, history)
    if problem:
        database.dispose()
        raise RuntimeError(f"{service}: {problem}")


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
    half done. Each takes the write lock at BEGIN (IMMEDIATE), as the services'
    transactions do: a deferred one that read first (the version table) fails
    at its first write, without waiting, if a running service committed
    meanwhile (WAL's stale snapshot, "database is locked")."""
    engine = create_engine(
        url, poolclass=pool.NullPool, connect_args={"timeout": 15}, hide_parameters=True
    )

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

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
                _bound_waits(connection)
                context.run_migrations()
                _record_compatibility(connection, history)
            # SQLite's DDL is not transactional to Alembic: it commits each
            # migration itself and leaves the record in an open transaction.
            if connection.in_transaction():
                connection.commit()
    finally:
        engine.dispose()


# A migration waiting on a lock holds every later query on that table behind
# it: it gives up instead (the hook fails, the old pods keep serving, the
# operator retries). Overridable for a long data migration.
LOCK_TIMEOUT_ENV = "IDENTITY_MIGRATE_LOCK_TIMEOUT"
STATEMENT_TIMEOUT_ENV = "IDENTITY_MIGRATE_STATEMENT_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = "5s"
DEFAULT_STATEMENT_TIMEOUT = "10min"


def _bound_waits(connection: Connection) -> None:
    """PostgreSQL's lock_timeout and statement_timeout for this migration's
    transaction only (SET LOCAL: nothing leaks through a pooler)."""
    if connection.dialect.name != "postgresql":
        return
    for name, variable, default in (
        ("lock_timeout", LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT),
        ("statement_timeout", STATEMENT_TIMEOUT_ENV, DEFAULT_STATEMENT_TIMEOUT),
    ):
        value = os.environ.get(variable, default)
        connection.execute(
            sa.text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value}
        )


def _record_compatibility(connection: Connection, history: History) -> None:
    """Record, with the revision, the oldest revision whose code runs on the
    schema when it is at the head this code knows; clear it otherwise (a
    downgrade: only code that knows the revision may run on it)."""
    table = sa.table(
        history.compat_table, sa.column("schema_revision"), sa.column("minimum_compatible")
    )
    connection.execute(
        sa.text(
            f"CREATE TABLE IF NOT EXISTS {history.compat_table} ("
            "schema_revision VARCHAR(64) NOT NULL PRIMARY KEY, "
            "minimum_compatible VARCHAR(64) NOT NULL)"
        )
    )
    connection.execute(sa.delete(table))
    head = head_revision(history)
    if revision_of(connection, history) == head:
        connection.execute(
            sa.insert(table).values(
                schema_revision=head, minimum_compatible=history.minimum_compatible or head
            )
        )
