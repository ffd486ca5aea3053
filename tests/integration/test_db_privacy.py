"""No statement parameter (a name, a NIK, an email) ever appears in a
database error or in SQLAlchemy's logs, on SQLite and on PostgreSQL: every
engine is made with `hide_parameters=True`."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, StatementError

from identity_store.db import Database

NAME = "Siti Rahayu"
NIK = "3273024107950003"


def test_a_failing_statement_does_not_carry_its_parameters(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    database = Database(database_url)
    try:
        # echo-style logging of statements would show parameters too.
        caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
        database.engine.echo = True
        with pytest.raises(DBAPIError) as caught, database.transaction() as session:
            session.execute(
                sa.text("SELECT * FROM no_such_table WHERE name = :name AND nik = :nik"),
                {"name": NAME, "nik": NIK},
            )
        text = str(caught.value)
        assert "no_such_table" in text and "parameters hidden" in text
        if database.dialect == "postgresql":
            # PostgreSQL refuses a NUL in text; the refusal must not echo the value either.
            with pytest.raises(StatementError) as nul, database.transaction() as session:
                session.execute(sa.text("SELECT :name"), {"name": f"{NAME}\x00"})
            assert NAME not in str(nul.value)
        assert NAME not in caplog.text and NIK not in caplog.text
        assert NAME not in text and NIK not in text
    finally:
        database.engine.echo = False
        database.dispose()
