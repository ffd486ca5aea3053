"""tools/test_database.py (run by `tools/dev test`) creates the tests' PostgreSQL
database when it is missing, and leaves an existing one alone."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
from sqlalchemy.engine import make_url

from identity_store.scratch import reachable
from tests.support import POSTGRES_URL, REPO_ROOT, unavailable


def databases(admin: str) -> set[str]:
    with psycopg.connect(admin, autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def run_tool(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "test_database.py")],
        env={**os.environ, "IDENTITY_TEST_POSTGRES_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_missing_test_database_is_created_once() -> None:
    problem = reachable(POSTGRES_URL)
    if problem:
        unavailable(f"PostgreSQL at {POSTGRES_URL}", problem)
    base = make_url(POSTGRES_URL)
    name = f"test_created_{uuid.uuid4().hex[:8]}"
    admin = base.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    url = base.set(database=name).render_as_string(hide_password=False)
    assert name not in databases(admin)
    try:
        first = run_tool(url)
        assert first.returncode == 0, first.stderr
        assert f"created the PostgreSQL database {name}" in first.stderr
        assert name in databases(admin)
        again = run_tool(url)
        assert again.returncode == 0 and again.stderr == ""
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def test_an_unreachable_server_is_one_line() -> None:
    result = run_tool("postgresql://postgres@127.0.0.1:1/test")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach PostgreSQL for postgresql://")
    assert len(result.stderr.splitlines()) == 1
