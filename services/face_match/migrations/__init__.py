"""face-match's migration history: its own tables, its own version table
(`alembic_version_face_match`), so one database may host every service's tables."""

from __future__ import annotations

from pathlib import Path

from identity_store.migrate import History
from services.face_match.models import Base

HISTORY = History(
    owner="face-match",
    directory=Path(__file__).parent,
    metadata=Base.metadata,
    version_table="alembic_version_face_match",
)
