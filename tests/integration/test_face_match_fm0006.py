"""Migration fm0006 on data written by the previous release, on SQLite and
PostgreSQL: every organisation that had a submission keeps signing with the
secret derived from the service key (a row with no sealed secret) until it
rotates, and a callback already queued gets its retry horizon from when its
submission ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from identity_store import migrate
from identity_store.db import make_engine
from identity_store.declarative import TYPE_ANNOTATION_MAP
from identity_store.types import UTCDateTime
from services.face_match.migrations import HISTORY as FACE_MATCH

ENDED = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _submissions() -> sa.TableClause:
    json = TYPE_ANNOTATION_MAP[dict[str, Any]]  # face-match's JSON document type
    return sa.table(
        "fm_submissions",
        sa.column("submission_id"),
        sa.column("org_id"),
        sa.column("correlation_id"),
        sa.column("reference_type"),
        sa.column("callback_url"),
        sa.column("state"),
        sa.column("failure_reason"),
        sa.column("selfie_type"),
        sa.column("reference_type_uploaded"),
        sa.column("result", json),
        sa.column("created_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
        sa.column("expires_at", UTCDateTime()),
        sa.column("completed_at", UTCDateTime()),
    )


def _submission(submission_id: str, org_id: str, completed: datetime | None) -> dict[str, object]:
    return {
        "submission_id": submission_id,
        "org_id": org_id,
        "correlation_id": f"c-{submission_id}",
        "reference_type": "KTP",
        "callback_url": "https://partner.example/cb",
        "state": "FAILED" if completed else "AWAITING_UPLOAD",
        "failure_reason": "",
        "selfie_type": "",
        "reference_type_uploaded": "",
        "result": {},
        "created_at": ENDED - timedelta(minutes=5),
        "updated_at": ENDED,
        "expires_at": ENDED + timedelta(days=1),
        "completed_at": completed,
    }


def test_fm0006_keeps_existing_organisations_on_the_derived_secret(database_url: str) -> None:
    migrate.downgrade(database_url, FACE_MATCH, "fm0004")
    callbacks = sa.table(
        "fm_callbacks",
        sa.column("callback_id"),
        sa.column("submission_id"),
        sa.column("org_id"),
        sa.column("url"),
        sa.column("body"),
        sa.column("state"),
        sa.column("attempt_count"),
        sa.column("next_attempt_at", UTCDateTime()),
        sa.column("last_status"),
    )
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                _submissions().insert(),
                [
                    _submission("fms_done", "org_old_a", ENDED),
                    _submission("fms_waiting", "org_old_b", None),
                ],
            )
            connection.execute(
                callbacks.insert(),
                [
                    {
                        "callback_id": "fmc_done",
                        "submission_id": "fms_done",
                        "org_id": "org_old_a",
                        "url": "https://partner.example/cb",
                        "body": "{}",
                        "state": "pending",
                        "attempt_count": 3,
                        "next_attempt_at": ENDED + timedelta(minutes=1),
                        "last_status": 500,
                    }
                ],
            )
        migrate.upgrade(database_url, FACE_MATCH)
        with engine.connect() as connection:
            secrets = connection.execute(
                sa.text("SELECT org_id, secret_sealed, previous_sealed FROM fm_callback_secrets")
            ).all()
            queued = connection.execute(
                sa.select(sa.column("queued_at", UTCDateTime())).select_from(
                    sa.table("fm_callbacks")
                )
            ).scalar_one()
    finally:
        engine.dispose()
    assert sorted(secrets) == [("org_old_a", None, None), ("org_old_b", None, None)]
    assert queued == ENDED
    assert migrate.schema_differences(database_url, FACE_MATCH) == []
