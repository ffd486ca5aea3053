"""Revision fm0005 gives each face-match transition its own audit entry key:
a row a relay had claimed but not settled keeps the key it may already be in
the audit chain under (`face-match:outbox:<sequence>`), so it is not chained
twice; the others stay without one (the relay keys them by submission and
sequence). On both databases; the downgrade removes what it added."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from identity_store import migrate
from identity_store.db import make_engine
from services.face_match.migrations import HISTORY


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'face-match.db'}"
    return request.getfixturevalue("postgres_schema_url")


def test_claimed_rows_keep_the_old_key_and_the_others_get_none(empty_url: str) -> None:
    migrate.upgrade(empty_url, HISTORY, "fm0004")
    engine = make_engine(empty_url)
    insert = sa.text(
        "INSERT INTO fm_transitions (sequence, submission_id, org_id, from_state, to_state,"
        " actor, detail, at, audited_at, audit_claimed_until) VALUES (:sequence, 'fms_m',"
        " 'org_m', '', 'CREATED', 'api_key:key_m', '', CURRENT_TIMESTAMP, :audited, :claimed)"
    )
    now = "2026-11-27 10:00:00+00:00"
    try:
        with engine.begin() as connection:
            # Appended; claimed and maybe appended (answer lost); never claimed.
            connection.execute(insert, {"sequence": 7, "audited": now, "claimed": now})
            connection.execute(insert, {"sequence": 8, "audited": None, "claimed": now})
            connection.execute(insert, {"sequence": 9, "audited": None, "claimed": None})
        migrate.upgrade(empty_url, HISTORY)
        with engine.connect() as connection:
            keys = connection.execute(
                sa.text("SELECT sequence, audit_key FROM fm_transitions ORDER BY sequence")
            ).all()
        assert [tuple(row) for row in keys] == [
            (7, None),
            (8, "face-match:outbox:8"),
            (9, None),
        ]
        assert migrate.schema_differences(empty_url, HISTORY) == []
        migrate.downgrade(empty_url, HISTORY, "fm0004")
        inspector = sa.inspect(engine)
        assert "fm_audit_outbox" not in inspector.get_table_names()
        assert "audit_key" not in {c["name"] for c in inspector.get_columns("fm_transitions")}
    finally:
        engine.dispose()
