"""Revision 0100_console indexes the customers already stored for the
console's search (names and emails as tokens), on both databases, and its
downgrade removes the console's tables."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from identity_store import migrate
from identity_store.db import make_engine
from services.kyc_tier.migrations import HISTORY


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'console.db'}"
    return request.getfixturevalue("postgres_schema_url")


def test_existing_customers_are_indexed_by_the_upgrade(empty_url: str) -> None:
    migrate.upgrade(empty_url, HISTORY, "0002")
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO orgs (org_id, name, created_at)"
                    " VALUES ('org_m', 'Bank', CURRENT_TIMESTAMP)"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO customers (customer_id, org_id, external_id, full_name, email,"
                    " tier, status, created_at, updated_at) VALUES ('cus_m', 'org_m', 'e1',"
                    " 'Dewi Sartika', 'dewi@bank.example', 'none', 'active', CURRENT_TIMESTAMP,"
                    " CURRENT_TIMESTAMP)"
                )
            )
        migrate.upgrade(empty_url, HISTORY)
        with engine.connect() as connection:
            tokens = connection.execute(
                sa.text("SELECT token FROM customer_search_tokens WHERE customer_id = 'cus_m'")
            ).scalars()
            assert set(tokens) == {"dewi", "sartika", "bank", "example"}
        assert migrate.schema_differences(empty_url, HISTORY) == []
        migrate.downgrade(empty_url, HISTORY, "0002")
        names = set(sa.inspect(engine).get_table_names())
        assert not {n for n in names if n.startswith("console_") or n == "customer_search_tokens"}
    finally:
        engine.dispose()
