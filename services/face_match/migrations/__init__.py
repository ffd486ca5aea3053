"""face-match's migration history: its own tables, its own version table
(`alembic_version_face_match`), so one database may host every service's tables."""

from __future__ import annotations

from pathlib import Path

from identity_store.migrate import History
from services.face_match.models import Base

# The oldest revision whose code runs on this history's newest schema
# (docs/migrations.md: expand/contract). fm0002 only expands (two nullable
# columns and an index); transitions written by fm0001 code are picked up by
# the newer audit relay (at least once). fm0003 and fm0004 only expand (a
# nullable column each, the callback's last error and last attempt time, that
# older code neither reads nor writes). fm0005 only expands (a nullable
# audit_key on transitions, the fm_audit_outbox table): rows older code writes
# have no key and the newer relay keys them by submission and sequence; an
# older relay still running keys what it relays the old way
# (`face-match:outbox:<sequence>`), so stop older processes before relying on
# the fix (docs/face-match.md, "Audit").
# fm0006 only expands (a nullable
# column, backfilled, that older code leaves NULL: the relay starts such a
# callback's retry horizon at its next attempt; a new table older code does
# not read: an organisation that rotates its callback secret during a rolling
# upgrade may get callbacks from older processes signed with its previous,
# derived secret, which still verifies during the overlap).
# fm0007 only expands too (a new table,
# fm_data_keys: the keys of the sealed images, which older code does not use;
# the plain images older code writes are refused by newer code, docs/face-match.md).
MINIMUM_COMPATIBLE = "fm0001"

HISTORY = History(
    owner="face-match",
    directory=Path(__file__).parent,
    metadata=Base.metadata,
    version_table="alembic_version_face_match",
    minimum_compatible=MINIMUM_COMPATIBLE,
)
