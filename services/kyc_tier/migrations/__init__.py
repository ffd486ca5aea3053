"""kyc-tier's migration history: its own tables, its own version table
(`alembic_version_kyc_tier`), so one database may host every service's tables."""

from __future__ import annotations

from pathlib import Path

from identity_store.migrate import History
from services.kyc_tier import (
    console_models,  # noqa: F401 - the console tables are in the metadata
    idempotency,  # noqa: F401 - its table is in the metadata too
    org_policies,  # noqa: F401 - the liveness policies too
)
from services.kyc_tier.models import Base

# The oldest revision whose code runs on this history's newest schema
# (docs/migrations.md: expand/contract). 0200_webhooks only expands (new
# tables; defaulted or nullable columns).
MINIMUM_COMPATIBLE = "0100_console"

HISTORY = History(
    owner="kyc-tier",
    directory=Path(__file__).parent,
    metadata=Base.metadata,
    version_table="alembic_version_kyc_tier",
    minimum_compatible=MINIMUM_COMPATIBLE,
)
