"""May this release's code run on the schema the database is at?

Migrations follow expand/contract (docs/migrations.md), so the schema a newer
release migrated to still serves older code, down to the revision that
release declares (`History.minimum_compatible`, recorded by `identity migrate`
in the history's `<version table>_compat` table). A service therefore runs on:

- its own head (the usual case: the hook migrated before the pods started);
- a newer schema it does not know, when the schema records a minimum
  compatible revision this code has reached (a `helm rollback`, a failed
  upgrade, an old pod the autoscaler adds mid-rollout).

It refuses a schema behind its head (its code may use what the missing
migrations add: run `identity migrate`), an empty one, and a newer schema
contracted past it.
"""

from __future__ import annotations

import sqlalchemy as sa

from identity_store.db import make_engine
from identity_store.migrate import History, head_revision, revision_of, script_directory


def recorded_minimum(connection: sa.Connection, history: History) -> str | None:
    """The minimum compatible revision `identity migrate` recorded, if any."""
    if not sa.inspect(connection).has_table(history.compat_table):
        return None
    row = connection.execute(
        sa.text(f"SELECT minimum_compatible FROM {history.compat_table}")  # noqa: S608 - our name
    ).first()
    return None if row is None else str(row[0])


def schema_problem(url: str, history: History) -> str | None:
    """Why this code may not run on the database's schema; None when it may."""
    head = head_revision(history)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            current = revision_of(connection, history)
            minimum = recorded_minimum(connection, history)
    finally:
        engine.dispose()
    if current is None:
        return "its tables do not exist; run `identity migrate` first"
    if current == head:
        return None
    known = {script.revision for script in script_directory(history).walk_revisions()}
    if current in known:
        return (
            f"its tables are at revision {current}, behind this release's {head}; "
            "run `identity migrate` first"
        )
    if minimum is None:
        return (
            f"its tables are at revision {current}, unknown to this release, and record "
            "no minimum compatible revision"
        )
    if minimum not in known:
        return (
            f"its tables are at revision {current}, which serves code from revision "
            f"{minimum} on; this release is at {head} (upgrade it, the schema was contracted)"
        )
    return None
