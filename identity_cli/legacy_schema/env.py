"""Alembic environment of the old single history (see identity_cli.legacy_schema)."""

from identity_cli.legacy_schema import HISTORY
from identity_store.migrate import run_environment

run_environment(HISTORY)
