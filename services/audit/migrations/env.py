"""Alembic environment of audit's history (see identity_store.migrate)."""

from identity_store.migrate import run_environment
from services.audit.migrations import HISTORY

run_environment(HISTORY)
