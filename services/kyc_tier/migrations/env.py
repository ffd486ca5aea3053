"""Alembic environment of kyc-tier's history (see identity_store.migrate)."""

from identity_store.migrate import run_environment
from services.kyc_tier.migrations import HISTORY

run_environment(HISTORY)
