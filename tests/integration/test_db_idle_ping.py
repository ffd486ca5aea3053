"""PostgreSQL connections are pinged before use only after sitting idle in the
pool (`identity_store.db.PING_IDLE_SECONDS`): a dead idle connection is
replaced without the caller seeing it, as with `pool_pre_ping`; one that dies
within that time of its last use fails the one transaction that finds it, and
the next transaction gets a new connection. Runs against the real server:
its backend is ended with pg_terminate_backend."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from identity_store.db import make_engine


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
