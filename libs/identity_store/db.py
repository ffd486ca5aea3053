"""Engines and sessions for PostgreSQL (psycopg 3) and embedded SQLite.

Services are asyncio; database work is synchronous SQLAlchemy run in a worker
thread (`Database.run`), which keeps one code path for both engines and keeps
the event loop free while PostgreSQL or SQLite works.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from identity_runtime.errors import Unavailable

T = TypeVar("T")


def normalise_url(url: str) -> str:
    """Accept `postgresql://` and `sqlite:///path`; use the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


# The embedded database's file in a data directory (the one-machine run).
SQLITE_FILE = "identity.db"


def default_sqlite_url(data_dir: Path) -> str:
    """The data directory's embedded database, its files readable by their
    owner only (0600; SQLite gives its journal files the database file's
    mode): it holds personal data. A directory made here is 0700."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    database = data_dir / SQLITE_FILE
    os.close(os.open(database, os.O_RDWR | os.O_CREAT, 0o600))
    for path in (database, *(Path(f"{database}{suffix}") for suffix in ("-wal", "-shm"))):
        if path.exists():
            path.chmod(0o600)
    return f"sqlite:///{database}"


class _SerialisedConnection(sqlite3.Connection):
    """A pysqlite connection whose write transactions queue on a lock file.

    SQLite's own busy handler polls with growing sleeps and no queue: with
    several processes appending to one file, an unlucky writer can lose the
    race again and again until its busy timeout runs out ("database is
    locked") while the others make progress. An exclusive `flock` on a file
    beside the database, taken before `BEGIN IMMEDIATE` and released once the
    transaction ends, makes writers wait in the kernel instead, each woken as
    soon as the lock is free; a process that dies releases it with its file
    descriptors. SQLite's lock stays underneath for anything else that opens
    the file (busy_timeout still applies there).
    """

    lock_path: str | None = None
    _lock_file: IO[bytes] | None = None
    # (thread, lock file) while this connection holds the lock.
    _holder: tuple[int, str] | None = None

    def acquire_write_lock(self) -> None:
        if self.lock_path is None or self._holder is not None:
            return
        holder = (threading.get_ident(), self.lock_path)
        if holder in _HOLDERS:
            # Blocking here would wait for ourselves: another connection of
            # this thread has a transaction open on the same file.
            raise RuntimeError(
                "nested SQLite transactions on one thread would deadlock; "
                "finish the open transaction first"
            )
        if self._lock_file is None:
            self._lock_file = open(self.lock_path, "ab")  # noqa: SIM115 - lives with the connection
        fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX)
        self._holder = holder
        _HOLDERS.add(holder)

    def release_write_lock(self) -> None:
        if self._holder is None or self._lock_file is None:
            return
        fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
        _HOLDERS.discard(self._holder)
        self._holder = None

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.release_write_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_write_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_write_lock()
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None


# (thread, lock file) pairs whose lock some connection holds (set operations
# are atomic under the GIL).
_HOLDERS: set[tuple[int, str]] = set()


def sqlite_lock_path(url: str) -> str | None:
    """The lock file beside a file database; None for an in-memory one."""
    database = make_url(normalise_url(url)).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}.writer-lock"


def _configure_sqlite(lock_path: str | None) -> Callable[[Any, Any], None]:
    def configure(dbapi_connection: Any, _record: Any) -> None:
        # Several service processes share one file on the one-machine run: WAL
        # lets readers proceed during a write, busy_timeout waits for the lock
        # instead of failing.
        cursor = dbapi_connection.cursor()
        # busy_timeout first: switching to WAL needs a lock another connection may hold.
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Deleted and overwritten content is zeroed in the file, not left in
        # free space: an erased customer's data leaves the disk with its rows
        # (the WAL keeps old pages only until its next checkpoint).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()
        # Let SQLAlchemy's BEGIN run (pysqlite would otherwise defer it).
        dbapi_connection.isolation_level = None
        dbapi_connection.lock_path = lock_path

    return configure


def _begin_immediate(conn: Any) -> None:
    # Queue on the writer lock, then take SQLite's write lock at BEGIN so
    # read-then-write transactions (chain appends, single-use consumption)
    # serialise instead of deadlocking.
    dbapi_connection = conn.connection.dbapi_connection
    dbapi_connection.acquire_write_lock()
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        dbapi_connection.release_write_lock()
        raise


# A pooled PostgreSQL connection idle this long is pinged before it is used.
PING_IDLE_SECONDS = 10.0


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Before a pooled connection is used, ping it (SELECT 1) when it sat in
    the pool `idle_seconds` or more; a dead one is replaced (the pool retries
    the checkout with a new connection), as `pool_pre_ping` does, but a
    connection in steady use is not pinged before every transaction (a round
    trip and two autocommit switches each; a step-up's services run about
    fifteen transactions). A connection that dies within `idle_seconds` of
    its last use (the server restarted meanwhile) fails the one transaction
    that finds it, and SQLAlchemy then replaces the pool's connections."""

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        # A new connection (no check-in yet) was just opened: nothing to ask.
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("the pooled connection is gone") from exc

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)


def make_engine(
    url: str, pool_size: int = 5, ping_idle_seconds: float = PING_IDLE_SECONDS
) -> Engine:
    """An engine that never puts statement parameters (names, NIKs, emails...)
    in its exceptions or logs: `hide_parameters=True` on every engine."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": 15,
                "factory": _SerialisedConnection,
            },
            hide_parameters=True,
        )
        event.listen(engine, "connect", _configure_sqlite(sqlite_lock_path(url)))
        event.listen(engine, "begin", _begin_immediate)
        return engine
    engine = create_engine(
        url,
        # `pool_size` is the most connections a process opens: the chart's
        # connection budget counts on it (no overflow beyond it).
        pool_size=pool_size,
        max_overflow=0,
        pool_recycle=1800,
        hide_parameters=True,
        # No server-side prepared statements (psycopg prepares a query after
        # five runs by default): behind PgBouncer's transaction pooling the
        # next transaction may land on a server connection without it.
        connect_args={"prepare_threshold": None},
    )
    _ping_when_idle(engine, ping_idle_seconds)
    return engine


def _unreachable(error: DBAPIError) -> bool:
    """A lost or refused PostgreSQL connection (not a failed statement: those
    keep their own error). A refused connection fails before any statement."""
    if isinstance(error.orig, sqlite3.Error):
        return False
    return bool(error.connection_invalidated) or (
        isinstance(error, OperationalError) and error.statement is None
    )


class Database:
    def __init__(self, url: str, pool_size: int = 5):
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, pool_size)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        from identity_runtime import metrics

        metrics.watch_database(self)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on
        error. A PostgreSQL server that cannot be reached, or a connection
        found dead (the server restarted or failed over), is Unavailable
        (DEPENDENCY_UNAVAILABLE, service "database": a 503 that may be retried),
        not an internal error; the pool replaces its connections."""
        try:
            with self._sessions() as session, session.begin():
                yield session
        except DBAPIError as exc:
            if not _unreachable(exc):
                raise
            raise Unavailable(
                "the database cannot be reached", "DEPENDENCY_UNAVAILABLE", {"service": "database"}
            ) from exc

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` in one transaction on a worker thread."""

        def in_thread() -> T:
            with self.transaction() as session:
                return work(session)

        return await asyncio.to_thread(in_thread)

    def pool_status(self) -> tuple[int, int]:
        """(connections checked out, most the pool may hold), for the metrics."""
        pool = self.engine.pool
        checked_out = getattr(pool, "checkedout", None)
        size = getattr(pool, "size", None)
        overflow = getattr(pool, "_max_overflow", 0)
        if not callable(checked_out) or not callable(size):
            return 0, 1
        return int(checked_out()), int(size()) + max(0, int(overflow))

    def dispose(self) -> None:
        self.engine.dispose()


def insert_missing(session: Session, model: type[Any], key: str, **values: Any) -> None:
    """INSERT the row unless one with the same `key` exists (ON CONFLICT DO
    NOTHING, on PostgreSQL and SQLite alike): a racing writer's row wins."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(model).values(**values).on_conflict_do_nothing(index_elements=[key]))


def make_url_safe_for_display(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(normalise_url(url)).render_as_string(hide_password=True)
