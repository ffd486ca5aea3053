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

Every temporary file of a run (pytest's tmp_path, the services', the
subprocesses') goes to one private directory under the system's; it is
removed when the run passes, and anything the suite left there outside
pytest's own tmp_path tree fails the run (tests leave no secrets in /tmp).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from identity_cli.schema import migrate_all
from identity_store.scratch import reachable, scratch_schema
from tests.support import POSTGRES_URL, unavailable

LAYERS = ("unit", "integration", "service", "e2e", "chart", "image")
TESTS_ROOT = Path(__file__).parent
RUN_TEMP = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    run_temp = Path(tempfile.mkdtemp(prefix="identity-tests-"))
    # This process (and pytest's tmp_path) and every child it starts.
    tempfile.tempdir = str(run_temp)
    os.environ["TMPDIR"] = str(run_temp)
    config.stash[RUN_TEMP] = run_temp


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from tests.support.meshauth import remove_test_ca

    remove_test_ca()
    run_temp = session.config.stash.get(RUN_TEMP, None)
    if run_temp is None or not run_temp.exists():
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    leaked = sorted(p.name for p in run_temp.iterdir() if not p.name.startswith("pytest-of-"))
    if leaked:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter is not None:
            reporter.write_line(
                f"tests left files in the temporary directory {run_temp}: {', '.join(leaked)} "
                "(use tmp_path / tmp_path_factory, or clean up)",
                red=True,
            )
    if session.exitstatus == pytest.ExitCode.OK:
        shutil.rmtree(run_temp, ignore_errors=True)
    elif reporter is not None:
        reporter.write_line(f"temporary files of this run kept in {run_temp}")


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
    with scratch_schema(POSTGRES_URL) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_schema_url: str) -> str:
    """A PostgreSQL schema with every service's tables migrated to head."""
    migrate_all(postgres_schema_url)
    return postgres_schema_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An embedded SQLite database with every service's tables migrated to head."""
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    migrate_all(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Both engines: the same test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")
