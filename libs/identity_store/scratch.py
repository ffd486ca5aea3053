"""Disposable PostgreSQL schemas for tests and benchmarks.

Each gets a schema of its own in a shared database (so several test runs and
engineers can share one server), reached through a URL whose search_path
points at it, and dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from identity_store.db import normalise_url


def reachable(base_url: str) -> str | None:
    """None when the server answers; otherwise the first line of the error."""
    try:
        engine = sa.create_engine(normalise_url(base_url), hide_parameters=True)
        with engine.connect() as connection:
            connection.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return str(exc).splitlines()[0]


@contextmanager
def scratch_schema(
    base_url: str, prefix: str = "t", prepare: Callable[[str], object] | None = None
) -> Iterator[str]:
    """A URL for a fresh, empty schema; `prepare(url)` runs first when given
    (e.g. the caller's migrations)."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}".lower()
    admin = sa.create_engine(
        normalise_url(base_url), isolation_level="AUTOCOMMIT", hide_parameters=True
    )
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base_url else "?"
    url = f"{normalise_url(base_url)}{separator}options=-csearch_path%3D{schema}"
    try:
        if prepare is not None:
            prepare(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
