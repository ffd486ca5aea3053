"""Fixtures shared by the suite: migrated SQLite and PostgreSQL databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from identity_store import migrate
from identity_store.db import normalise_url
from tests.support import IN_CI, POSTGRES_URL, unique_name


def _postgres_available() -> str | None:
    try:
        engine = sa.create_engine(normalise_url(POSTGRES_URL))
        with engine.connect() as connection:
            connection.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return str(exc).splitlines()[0]


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """An empty PostgreSQL schema of its own (tests may run side by side),
    as a URL whose search_path points at it."""
    problem = _postgres_available()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {problem}")
        pytest.skip(f"PostgreSQL is not reachable: {problem}")
    schema = unique_name("t").lower()
    admin = sa.create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{normalise_url(POSTGRES_URL)}{separator}options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_schema_url: str) -> str:
    """A PostgreSQL schema migrated to head."""
    migrate.upgrade(postgres_schema_url)
    return postgres_schema_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An embedded SQLite database migrated to head."""
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Both engines: the same test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")
