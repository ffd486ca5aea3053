"""Alembic environment of face-match's history (see identity_store.migrate)."""

from identity_store.migrate import run_environment
from services.face_match.migrations import HISTORY

run_environment(HISTORY)
