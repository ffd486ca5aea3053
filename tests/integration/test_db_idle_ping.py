"""PostgreSQL connections are pinged before use only after sitting idle in the
pool (`identity_store.db.PING_IDLE_SECONDS`): a dead idle connection is
replaced without the caller seeing it, as with `pool_pre_ping`; one that dies
within that time of its last use fails the one transaction that finds it, and
the next transaction gets a new connection. That one failure, and a server
that cannot be reached, are Unavailable (DEPENDENCY_UNAVAILABLE, service
"database"), not an internal error. Runs against the real server: its
backend is ended with pg_terminate_backend."""

from __future__ import annotations

import socket

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from identity_runtime.errors import Unavailable
from identity_store.db import Database, make_engine


def _backend(engine: sa.Engine) -> int:
    with engine.begin() as connection:
        return int(connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(url: str, pid: int) -> None:
    other = make_engine(url)
    try:
        with other.begin() as connection:
            ended = connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            assert ended.scalar_one() is True
    finally:
        other.dispose()


def test_a_connection_that_died_while_idle_is_replaced_unseen(postgres_schema_url: str) -> None:
    engine = make_engine(postgres_schema_url, pool_size=1, ping_idle_seconds=0)
    try:
        first = _backend(engine)
        _terminate(postgres_schema_url, first)
        second = _backend(engine)  # pinged, found dead, replaced: no error
        assert second != first
    finally:
        engine.dispose()


def test_a_connection_in_steady_use_is_not_pinged_and_the_next_one_is_new(
    postgres_schema_url: str,
) -> None:
    engine = make_engine(postgres_schema_url, pool_size=1, ping_idle_seconds=3600)
    try:
        first = _backend(engine)
        _terminate(postgres_schema_url, first)
        # Not idle long enough to be pinged: the transaction finds it dead.
        with pytest.raises(DBAPIError) as caught:
            _backend(engine)
        assert caught.value.connection_invalidated
        assert _backend(engine) != first
    finally:
        engine.dispose()


def _database_backend(database: Database) -> int:
    with database.transaction() as session:
        return int(session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def test_a_lost_connection_is_a_dependency_unavailable_and_the_next_transaction_works(
    postgres_schema_url: str,
) -> None:
    """What a service's caller sees when PostgreSQL restarts under a connection
    in steady use: 503 DEPENDENCY_UNAVAILABLE naming the database, not INTERNAL."""
    database = Database(postgres_schema_url, pool_size=1)
    try:
        first = _database_backend(database)
        _terminate(postgres_schema_url, first)
        with pytest.raises(Unavailable) as caught:
            _database_backend(database)
        refused = caught.value
        assert (refused.code, refused.reason) == ("UNAVAILABLE", "DEPENDENCY_UNAVAILABLE")
        assert refused.metadata == {"service": "database"}
        assert _database_backend(database) != first
    finally:
        database.dispose()


def test_an_unreachable_server_is_a_dependency_unavailable(postgres_schema_url: str) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    nobody = sa.make_url(postgres_schema_url).set(host="127.0.0.1", port=port)
    database = Database(nobody.render_as_string(hide_password=False), pool_size=1)
    try:
        with pytest.raises(Unavailable) as caught:
            _database_backend(database)
        assert caught.value.metadata == {"service": "database"}
        # The address is not in what a caller is told.
        assert str(port) not in str(caught.value)
    finally:
        database.dispose()


def test_a_failed_statement_keeps_its_own_error(postgres_schema_url: str) -> None:
    database = Database(postgres_schema_url, pool_size=1)
    try:
        with pytest.raises(DBAPIError), database.transaction() as session:
            session.execute(sa.text("SELECT * FROM no_such_table"))
        assert _database_backend(database) > 0
    finally:
        database.dispose()
