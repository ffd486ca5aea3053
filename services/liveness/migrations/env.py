"""Alembic environment of liveness's history (see identity_store.migrate)."""

from identity_store.migrate import run_environment
from services.liveness.migrations import HISTORY

run_environment(HISTORY)
