"""Migrations bring empty PostgreSQL and SQLite databases to head, and match the models."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from identity_store import migrate, models
from identity_store.db import make_engine


def _assert_schema_matches_models(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, models.Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_empty_sqlite_reaches_head(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    assert migrate.is_at_head(url)
    assert set(models.Base.metadata.tables) <= _tables(url)
    _assert_schema_matches_models(url)
    # Idempotent, and reversible to empty.
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    assert _tables(url) == {"alembic_version"}


def test_empty_postgresql_reaches_head(postgres_schema_url: str) -> None:
    url = postgres_schema_url
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    assert migrate.is_at_head(url)
    assert set(models.Base.metadata.tables) <= _tables(url)
    _assert_schema_matches_models(url)
    migrate.downgrade(url, "base")
    assert _tables(url) == {"alembic_version"}
