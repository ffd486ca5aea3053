"""Fixtures shared by the suite (migrated SQLite and PostgreSQL databases) and
the layer markers.

Tests live in one folder per layer; each test is marked with its layer, so
`pytest -m unit` (or `tools/dev test unit`) runs one layer:

    unit         in-process, no database, no servers
    integration  in-process with a real database or real model weights
    service      one service (or the gateway) served on port 0
    e2e          the whole mesh, or the `identity` command
    chart        the Helm chart rendered with Helm's own engine
    image        the container image definition
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from identity_store import migrate
from identity_store.scratch import reachable, scratch_schema
from tests.support import POSTGRES_URL, unavailable

LAYERS = ("unit", "integration", "service", "e2e", "chart", "image")
TESTS_ROOT = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        layer = item.path.relative_to(TESTS_ROOT).parts[0]
        if layer not in LAYERS:
            raise pytest.UsageError(
                f"{item.path}: tests live in one of the layer folders {', '.join(LAYERS)}"
            )
        item.add_marker(getattr(pytest.mark, layer))


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """An empty PostgreSQL schema of its own (tests may run side by side),
    as a URL whose search_path points at it."""
    problem = reachable(POSTGRES_URL)
    if problem:
        unavailable(f"PostgreSQL at {POSTGRES_URL}", problem)
    with scratch_schema(POSTGRES_URL, migrated=False) as url:
        yield url


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
