"""Least-privilege roles on PostgreSQL, granted by `identity migrate`.

Migrations run as the schema owner; each service connects as a role that
may only do what its code does to its own tables (deploy/postgres/roles.sql
creates the roles). A history grants its role `History.privileges` per table
(default: SELECT, INSERT, UPDATE, DELETE on each of its tables) and SELECT on
its version tables (the start-up schema check reads them); audit's role may
only INSERT and SELECT its entries, so the log is append-only in the
database, not just in the code. Each run first revokes everything on those
tables from the role, so a narrowed policy takes effect.

`IDENTITY_MIGRATE_GRANTS` names the roles: "audit=identity_audit,*=identity_app"
(an owner, or * for every other one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import sqlalchemy as sa

from identity_store.migrate import History

GRANTS_ENV = "IDENTITY_MIGRATE_GRANTS"
DML = ("SELECT", "INSERT", "UPDATE", "DELETE")
_ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def parse_roles(text: str) -> dict[str, str]:
    """ "audit=identity_audit,*=identity_app" -> {"audit": ..., "*": ...}."""
    roles: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        owner, _, role = item.partition("=")
        if not _ROLE.fullmatch(role.strip()):
            raise ValueError(f"{GRANTS_ENV}: {item!r} is not owner=role (role: lower-case name)")
        roles[owner.strip()] = role.strip()
    return roles


def role_for(history: History, roles: Mapping[str, str]) -> str | None:
    return roles.get(history.owner) or roles.get("*")


def statements(history: History, role: str, schema: str) -> list[str]:
    """The GRANTs (after REVOKEs) giving `role` exactly its history's
    privileges on its tables in `schema` (where the migrations created them)."""
    quoted = f'"{role}"'
    privileges = history.privileges or {}
    result = [f'GRANT USAGE ON SCHEMA "{schema}" TO {quoted}']
    for table in sorted(history.metadata.tables):
        granted = privileges.get(table, DML)
        result.append(f'REVOKE ALL ON TABLE "{table}" FROM {quoted}')
        result.append(f'GRANT {", ".join(granted)} ON TABLE "{table}" TO {quoted}')
    for table in (history.version_table, history.compat_table):
        result.append(f'GRANT SELECT ON TABLE "{table}" TO {quoted}')
    # Identity columns' sequences, for INSERT.
    result.append(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO {quoted}')
    return result


def apply(connection: sa.Connection, history: History, role: str) -> None:
    schema = connection.execute(sa.text("SELECT current_schema()")).scalar_one()
    for statement in statements(history, role, schema):
        connection.exec_driver_sql(statement)
