"""Least privilege on real PostgreSQL (deploy/postgres/roles.sql,
identity_store.grants): `identity migrate` grants each service's role only
its own tables; audit's role may INSERT and SELECT its entries and, of
UPDATE, only the columns an erasure's redaction writes (the log is otherwise
append-only in the database, not only in the code),
and the real audit service appends and verifies its chain as that role; the
services' role cannot read the audit log nor change the schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from identity_cli.main import main as identity
from identity_store import grants
from identity_store.db import normalise_url
from services.audit.service import SPEC as AUDIT
from tests.service.test_audit import Client, env, request
from tests.support import start_service

pytestmark = pytest.mark.postgres


@pytest.fixture
def roles(postgres_schema_url: str) -> Iterator[tuple[str, str]]:
    """Two fresh login roles (roles are cluster-wide: dropped afterwards)."""
    suffix = uuid.uuid4().hex[:8]
    app, audit = f"identity_app_{suffix}", f"identity_audit_{suffix}"
    engine = sa.create_engine(normalise_url(postgres_schema_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        for role in (app, audit):
            connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
    try:
        yield app, audit
    finally:
        with engine.connect() as connection:
            for role in (app, audit):
                connection.exec_driver_sql(f"DROP OWNED BY {role}")
                connection.exec_driver_sql(f"DROP ROLE {role}")
        engine.dispose()


def as_role(url: str, role: str) -> str:
    return sa.engine.make_url(normalise_url(url)).set(username=role).render_as_string(False)


def refused(url: str, statement: str) -> bool:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(statement)
        return False
    except sa.exc.ProgrammingError as exc:
        return "permission denied" in str(exc) or "must be owner" in str(exc)
    finally:
        engine.dispose()


async def test_each_role_gets_only_its_own_tables(
    postgres_schema_url: str, roles: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, audit = roles
    monkeypatch.setenv(grants.GRANTS_ENV, f"audit={audit},*={app}")
    assert identity(["migrate", "--database-url", postgres_schema_url]) == 0

    audit_url = as_role(postgres_schema_url, audit)
    for statement in (
        "UPDATE audit_entries SET actor = actor",
        "DELETE FROM audit_entries",
        "TRUNCATE audit_entries",
        "SELECT count(*) FROM customers",
        "CREATE TABLE audit_shadow (i int)",
    ):
        assert refused(audit_url, statement), statement
    app_url = as_role(postgres_schema_url, app)
    for statement in (
        "SELECT count(*) FROM audit_entries",
        "SELECT count(*) FROM audit_chain_head",
        "CREATE TABLE scratch (i int)",
        "DROP TABLE customers",
    ):
        assert refused(app_url, statement), statement
    assert not refused(app_url, "SELECT count(*) FROM customers")

    # The real audit service, connected as its role, appends and verifies.
    server = await start_service(AUDIT, env(audit_url))
    try:
        async with Client(server) as client:
            written = [await client.append(request(i)) for i in range(1, 4)]
            assert [e.sequence for e in written] == [1, 2, 3]
            verified = await client.verify()
            assert verified.intact and verified.entries_checked == 3
            # An erasure's redaction writes only the columns granted for it.
            erased = request(0, action="customer.erase", subject="customer:cus_1")
            erased.evidence_hashes.clear()
            await client.append(erased)
            redacted = await client.query(subject="customer:cus_1", action="face.match")
            assert [dict(e.evidence_hashes) for e in redacted.entries] == [{}]
            verified = await client.verify()
            assert verified.intact and verified.entries_checked == 5
    finally:
        await server.stop(0)


def test_bad_role_lists_are_refused(postgres_schema_url: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv(grants.GRANTS_ENV, "audit=Robert'); DROP TABLE x;--")
    assert identity(["migrate", "--database-url", postgres_schema_url]) == 2
    assert "is not owner=role" in capsys.readouterr().err
