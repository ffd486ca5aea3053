"""The single migration history every service shared before each service owned
its tables (revisions 0001, 0004, 0005, version table `alembic_version`).

It is kept only to adopt databases it migrated: `identity migrate` brings
such a database to 0006, which hands every table to its owner, then stamps
each service's history at its baseline and drops `alembic_version`
(identity_cli.schema). New revisions go into the services' own histories.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData

from identity_store.migrate import History

HISTORY = History(
    owner="single history",
    directory=Path(__file__).parent,
    metadata=MetaData(),
    version_table="alembic_version",
)
# The revision whose schema equals the union of the services' baselines.
HANDOVER = "0006"
