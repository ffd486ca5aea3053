#!/usr/bin/env python3
"""Create the PostgreSQL database the test suite uses when it is missing.

    .venv/bin/python tools/test_database.py     (tools/dev test runs it)

The database is the one named by IDENTITY_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/test); the server must be running. Each
test then works in a scratch schema of its own inside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import POSTGRES_URL  # noqa: E402


def ensure_database(url: str) -> bool:
    """Create the URL's database unless it exists; True when it was created."""
    parsed = make_url(url)
    name = parsed.database
    if not name:
        raise SystemExit(f"error: {parsed.render_as_string()} names no database")
    # Connect to the server's maintenance database to look for (and create) it.
    admin = parsed.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def main() -> int:
    try:
        created = ensure_database(POSTGRES_URL)
    except psycopg.OperationalError as exc:
        shown = make_url(POSTGRES_URL).render_as_string(hide_password=True)
        print(f"error: cannot reach PostgreSQL for {shown}: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    if created:
        name = make_url(POSTGRES_URL).database
        print(f"==> created the PostgreSQL database {name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
