"""The one-machine run's embedded database holds personal data (names,
emails, phones, keyed NIK hashes): like the logs and the local secrets, its
files are its owner's only."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from identity_store.db import SQLITE_FILE, default_sqlite_url


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_embedded_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    url = default_sqlite_url(data_dir)
    database = data_dir / SQLITE_FILE
    assert url == f"sqlite:///{database}"
    assert _mode(data_dir) == 0o700
    assert _mode(database) == 0o600
    # SQLite gives its journal files the database file's permissions.
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (x)")
        connection.execute("INSERT INTO t VALUES (1)")
        assert _mode(Path(f"{database}-wal")) == 0o600


def test_an_earlier_runs_database_files_are_made_private(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    database = tmp_path / SQLITE_FILE
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        path.write_bytes(b"")
        path.chmod(0o644)
    default_sqlite_url(tmp_path)
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        assert _mode(path) == 0o600, path
    # A directory the operator chose is left as it is.
    assert _mode(tmp_path) == 0o755
