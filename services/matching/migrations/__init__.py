"""matching's migration history: its own tables, its own version table
(`alembic_version_matching`), so one database may host every service's tables."""

from __future__ import annotations

from pathlib import Path

from identity_store.migrate import History
from services.matching.models import Base

HISTORY = History(
    owner="matching",
    directory=Path(__file__).parent,
    metadata=Base.metadata,
    version_table="alembic_version_matching",
)
