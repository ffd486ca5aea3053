"""Alembic environment of matching's history (see identity_store.migrate)."""

from identity_store.migrate import run_environment
from services.matching.migrations import HISTORY

run_environment(HISTORY)
