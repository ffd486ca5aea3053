"""liveness's migration history: its own tables, its own version table
(`alembic_version_liveness`), so one database may host every service's tables."""

from __future__ import annotations

from pathlib import Path

from identity_store.migrate import History
from services.liveness.models import Base

# The oldest revision whose code runs on this history's newest schema
# (docs/migrations.md: expand/contract). Only the baseline so far.
MINIMUM_COMPATIBLE = "0001"

HISTORY = History(
    owner="liveness",
    directory=Path(__file__).parent,
    metadata=Base.metadata,
    version_table="alembic_version_liveness",
    minimum_compatible=MINIMUM_COMPATIBLE,
)
