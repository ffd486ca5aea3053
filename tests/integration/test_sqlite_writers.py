"""SQLite writers queue on a lock file beside the database (identity_store.db):
held for exactly the span of a transaction, released on commit, rollback and
when the process dies, and a nested transaction on one thread is refused
instead of waiting for itself."""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from identity_store import migrate
from identity_store.db import Database, sqlite_lock_path


def _can_lock(path: str) -> bool:
    with open(path, "ab") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return True


@pytest.fixture
def database(tmp_path: Path):
    database = Database(f"sqlite:///{tmp_path / 'identity.db'}")
    with database.transaction() as session:
        session.execute(sa.text("CREATE TABLE t (n INTEGER)"))
    yield database
    database.dispose()


def test_the_writer_lock_spans_exactly_one_transaction(database: Database) -> None:
    lock = sqlite_lock_path(database.url)
    assert lock is not None and lock.endswith("identity.db.writer-lock")
    with database.transaction() as session:
        session.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert not _can_lock(lock)
    assert _can_lock(lock)
    with pytest.raises(ZeroDivisionError), database.transaction() as session:
        session.execute(sa.text("INSERT INTO t VALUES (2)"))
        assert not _can_lock(lock)
        _ = 1 / 0
    assert _can_lock(lock)
    with database.transaction() as session:
        assert session.scalars(sa.text("SELECT n FROM t")).all() == [1]


def test_a_nested_transaction_on_one_thread_is_refused_not_deadlocked(database: Database) -> None:
    with database.transaction() as outer:
        outer.execute(sa.text("INSERT INTO t VALUES (1)"))
        with pytest.raises(RuntimeError, match="nested SQLite transactions"):
            with database.transaction() as inner:
                inner.execute(sa.text("INSERT INTO t VALUES (2)"))
    with database.transaction() as session:
        assert session.scalars(sa.text("SELECT n FROM t")).all() == [1]


def test_a_migration_that_reads_first_writes_while_a_service_commits(database: Database) -> None:
    """The migration holds the write lock from BEGIN: a service's write waits
    for it instead of leaving the migration a stale snapshot that fails its
    first write ("database is locked", CI's migration test on a relay's commit)."""
    service_wrote = threading.Event()

    def service_write() -> None:
        with database.transaction() as session:
            session.execute(sa.text("INSERT INTO t VALUES (1)"))
        service_wrote.set()

    with migrate.migration_connection(database.url) as migration:
        assert migration.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
        service = threading.Thread(target=service_write)
        service.start()
        # Long enough for the service's commit, were it not waiting for us.
        service_wrote.wait(2)
        migration.exec_driver_sql("INSERT INTO t VALUES (2)")
    service.join(30)
    assert service_wrote.is_set()
    with database.transaction() as session:
        assert sorted(session.scalars(sa.text("SELECT n FROM t"))) == [1, 2]


def test_a_deleted_rows_content_leaves_the_file(tmp_path: Path) -> None:
    """Probe 6, D7: an erased value stayed readable in the SQLite file's free
    space after its row was deleted. Deleted content is zeroed (secure_delete)."""
    path = tmp_path / "identity.db"
    database = Database(f"sqlite:///{path}")
    try:
        with database.transaction() as session:
            session.execute(sa.text("CREATE TABLE people (name TEXT)"))
            session.execute(sa.text("INSERT INTO people VALUES ('Siti Rahayu Erased'), ('kept')"))
        with database.transaction() as session:
            session.execute(sa.text("DELETE FROM people WHERE name LIKE 'Siti%'"))
    finally:
        database.dispose()
    # The WAL's pages into the file (as the last connection's close does).
    with contextlib.closing(sqlite3.connect(path)) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = path.read_bytes()
    assert b"kept" in stored and b"Siti Rahayu Erased" not in stored


def _die_holding_the_lock(url: str) -> None:
    import os

    database = Database(url)
    session = database._sessions()
    session.begin()
    session.execute(sa.text("INSERT INTO t VALUES (9)"))
    os._exit(0)  # no commit, no rollback, no close


def test_a_writer_that_dies_releases_the_lock(database: Database) -> None:
    process = multiprocessing.get_context("spawn").Process(
        target=_die_holding_the_lock, args=(database.url,)
    )
    process.start()
    process.join(60)
    assert process.exitcode == 0
    lock = sqlite_lock_path(database.url)
    assert lock is not None and _can_lock(lock)
    with database.transaction() as session:
        session.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert session.scalars(sa.text("SELECT n FROM t")).all() == [1]


def test_memory_databases_take_no_lock_file() -> None:
    assert sqlite_lock_path("sqlite://") is None
    assert sqlite_lock_path("sqlite:///:memory:") is None
