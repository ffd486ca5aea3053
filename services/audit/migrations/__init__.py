"""audit's migration history: its own tables, its own version table
(`alembic_version_audit`), so one database may host every service's tables."""

from __future__ import annotations

from pathlib import Path

from identity_store.migrate import History
from services.audit.models import Base

# The oldest revision whose code runs on this history's newest schema
# (docs/migrations.md: expand/contract). Only the baseline so far.
MINIMUM_COMPATIBLE = "0001"

# What audit's database role may do (identity_store.grants): the entries are
# append-only in the database too, except the three columns an erasure's
# redaction writes (redaction.py: without the chain's key, a change to them
# is ENTRY_ALTERED); the chain head moves; a checkpoint may be replaced.
# Purging old entries is `identity audit purge`, run by an operator with the
# owner's credential.
PRIVILEGES = {
    "audit_entries": (
        "SELECT",
        "INSERT",
        "UPDATE (evidence_hashes, redaction_hmac, redaction_key_id)",
    ),
    "audit_chain_head": ("SELECT", "INSERT", "UPDATE"),
    "audit_checkpoints": ("SELECT", "INSERT", "DELETE"),
}

HISTORY = History(
    owner="audit",
    directory=Path(__file__).parent,
    metadata=Base.metadata,
    version_table="alembic_version_audit",
    minimum_compatible=MINIMUM_COMPATIBLE,
    privileges=PRIVILEGES,
)
