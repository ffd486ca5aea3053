"""Every service's migration history, migrated together or one at a time, and
the adoption of databases migrated by the old single history.

Each service that stores data owns its tables and its history (its own
version table), so one database may host them all. This module is the one
place that knows them all: the command line sits above the services.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from identity_cli import legacy_schema
from identity_store import migrate
from identity_store.migrate import History
from services.audit.migrations import HISTORY as AUDIT
from services.face_match.migrations import HISTORY as FACE_MATCH
from services.kyc_tier.migrations import HISTORY as KYC_TIER
from services.liveness.migrations import HISTORY as LIVENESS
from services.matching.migrations import HISTORY as MATCHING

# The histories split out of the old single history (adoption stamps their baselines).
ADOPTED: tuple[History, ...] = (KYC_TIER, LIVENESS, MATCHING, AUDIT)
HISTORIES: tuple[History, ...] = (*ADOPTED, FACE_MATCH)
BY_OWNER = {history.owner: history for history in HISTORIES}


class UnknownSchema(RuntimeError):
    """The database records a schema version this platform does not know."""


@dataclass(frozen=True)
class Step:
    """One history migrated: its revision before and after."""

    owner: str
    before: str | None
    after: str | None


def history(owner: str) -> History:
    try:
        return BY_OWNER[owner]
    except KeyError:
        raise ValueError(
            f"{owner!r} owns no tables; services with migrations: {', '.join(BY_OWNER)}"
        ) from None


def adopt_single_history(url: str) -> str | None:
    """Adopt a database migrated by the old single history; returns the
    revision it was at, or None when there was nothing to adopt.

    The old history is first brought to its hand-over revision (which splits
    the shared data keys and drops references across owners), then every
    service's history is stamped at its baseline (equal to that schema) and
    the old version table is dropped, in one transaction. Safe to repeat: a
    history already stamped is left as it is.
    """
    legacy = legacy_schema.HISTORY
    found = migrate.current_revision(url, legacy)
    if found is None:
        return None
    known = {script.revision for script in migrate.script_directory(legacy).walk_revisions()}
    if found not in known:
        raise UnknownSchema(
            f"the database's alembic_version is at {found!r}, not a revision of this "
            "platform's single history; nothing was changed"
        )
    migrate.upgrade(url, legacy, legacy_schema.HANDOVER)
    with migrate.migration_connection(url) as connection:
        for owned in ADOPTED:
            if migrate.revision_of(connection, owned) is None:
                migrate.stamp(connection, owned, migrate.base_revision(owned))
        connection.execute(sa.text(f"DROP TABLE {legacy.version_table}"))
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {legacy.compat_table}"))
    return found


def migrate_all(url: str, owners: Iterable[str] | None = None) -> list[Step]:
    """Bring each history (every one, or the owners named) to its head,
    adopting an old single-history database first."""
    adopt_single_history(url)
    steps = []
    for owned in HISTORIES if owners is None else [history(o) for o in owners]:
        before = migrate.current_revision(url, owned)
        migrate.upgrade(url, owned)
        steps.append(Step(owned.owner, before, migrate.current_revision(url, owned)))
    return steps
