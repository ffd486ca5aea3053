"""Each service's own migration history on PostgreSQL and SQLite: it reaches its
head, matches its models, and touches no other service's tables; a database
migrated by the old single history is adopted by `identity migrate` with its
data (the shared data keys split by owner, sealed templates still open)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import sqlalchemy as sa

from identity_cli import legacy_schema
from identity_cli.main import main as identity
from identity_cli.schema import HISTORIES, migrate_all
from identity_crypto import envelope, templates
from identity_crypto.datakeys import DataKeyStore, wrap_context
from identity_crypto.keyring import generate
from identity_crypto.kms import LocalKms
from identity_store import migrate
from identity_store.db import Database, make_engine
from services.matching import models as matching
from services.matching.contract import EmbeddingContract
from services.matching.enrollments import EnrollmentStore

VERSION_TABLES = {h.version_table for h in HISTORIES}
# Where `identity migrate` records each schema's minimum compatible revision.
COMPAT_TABLES = {h.compat_table for h in HISTORIES}
OWNED = {h.owner: set(h.metadata.tables) for h in HISTORIES}


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    return request.getfixturevalue("postgres_schema_url")


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _foreign_keys(url: str, table: str) -> set[str]:
    """The tables `table` refers to."""
    engine = make_engine(url)
    try:
        return {fk["referred_table"] for fk in sa.inspect(engine).get_foreign_keys(table)}
    finally:
        engine.dispose()


def test_the_histories_own_disjoint_tables_with_their_own_version_tables() -> None:
    owners: dict[str, str] = {}
    for history in HISTORIES:
        for table in history.metadata.tables:
            assert table not in owners, f"{table}: owned by {owners[table]} and {history.owner}"
            owners[table] = history.owner
        for table in history.metadata.tables.values():
            for fk in table.foreign_keys:
                assert fk.column.table.name in history.metadata.tables, (
                    f"{table.name} refers to {fk.column.table.name}, not {history.owner}'s"
                )
    assert len(VERSION_TABLES) == len(HISTORIES)
    assert "alembic_version" not in VERSION_TABLES


def test_every_history_reaches_head_matches_its_models_and_goes_back(empty_url: str) -> None:
    url = empty_url
    assert all(migrate.current_revision(url, h) is None for h in HISTORIES)
    steps = migrate_all(url)
    assert [(s.owner, s.before) for s in steps] == [(h.owner, None) for h in HISTORIES]
    for history in HISTORIES:
        assert migrate.is_at_head(url, history)
        assert migrate.schema_differences(url, history) == []
    assert _tables(url) == set().union(*OWNED.values()) | VERSION_TABLES | COMPAT_TABLES
    # Idempotent.
    again = migrate_all(url)
    assert all(
        s.before == s.after == migrate.head_revision(h)
        for s, h in zip(again, HISTORIES, strict=True)
    )
    # One history goes back to empty without touching the others' tables.
    matching_history = next(h for h in HISTORIES if h.owner == "matching")
    migrate.downgrade(url, matching_history, "base")
    assert not _tables(url) & OWNED["matching"]
    for history in HISTORIES:
        if history is not matching_history:
            assert migrate.schema_differences(url, history) == []
    for history in HISTORIES:
        migrate.downgrade(url, history, "base")
    assert _tables(url) == VERSION_TABLES | COMPAT_TABLES


def test_one_service_migrates_alone(empty_url: str) -> None:
    """`identity migrate --service liveness`: its tables and version table only."""
    assert identity(["migrate", "--database-url", empty_url, "--service", "liveness"]) == 0
    assert _tables(empty_url) == OWNED["liveness"] | {
        "alembic_version_liveness",
        "alembic_version_liveness_compat",
    }
    liveness = next(h for h in HISTORIES if h.owner == "liveness")
    assert migrate.is_at_head(empty_url, liveness)
    assert migrate.schema_differences(empty_url, liveness) == []


def test_migrate_refuses_unknown_services_and_revisions_without_one(tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert identity(["migrate", "--database-url", url, "--service", "embedding"]) == 2
    assert "owns no tables" in capsys.readouterr().err
    assert identity(["migrate", "--database-url", url, "--revision", "0001"]) == 2
    assert "--revision needs --service" in capsys.readouterr().err


# --- adoption of a database migrated by the old single history -------------------

NOW = datetime(2026, 11, 20, tzinfo=UTC)
CONTRACT = EmbeddingContract("sface-2021dec", "", 128)


def _seed_single_history(url: str, kms: LocalKms, vector: np.ndarray) -> dict[str, bytes | None]:
    """What kyc-tier, matching, liveness and audit wrote under the old
    history: keys of every purpose in the shared table (one destroyed), a
    template sealed under its key, and rows referring to the organisation."""
    keys = {
        "dk_template": ("template", False),
        "dk_pii": ("pii", False),
        "dk_bundle": ("bundle", True),
    }
    wrapped: dict[str, bytes | None] = {}
    material: dict[str, bytes] = {}
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO orgs (org_id, name, created_at) VALUES ('org_1', 'Org', :now)"),
            {"now": NOW.replace(tzinfo=None)},
        )
        for key_id, (purpose, destroyed) in keys.items():
            row = SimpleNamespace(
                key_id=key_id, org_id="org_1", customer_id="cus_1", purpose=purpose
            )
            material[key_id] = os.urandom(32)
            kek_id, blob = kms.wrap(material[key_id], wrap_context(row))  # type: ignore[arg-type]
            wrapped[key_id] = None if destroyed else blob
            connection.execute(
                sa.text(
                    "INSERT INTO data_keys (key_id, org_id, customer_id, purpose, wrapped_key,"
                    " kek_id, created_at, destroyed_at) VALUES (:key_id, 'org_1', 'cus_1',"
                    " :purpose, :wrapped, :kek_id, :now, :destroyed)"
                ),
                {
                    "key_id": key_id,
                    "purpose": purpose,
                    "wrapped": wrapped[key_id],
                    "kek_id": kek_id,
                    "now": NOW.replace(tzinfo=None),
                    "destroyed": NOW.replace(tzinfo=None) if destroyed else None,
                },
            )
        sealed = envelope.seal(
            material["dk_template"],
            templates.encode(vector, "fp16"),
            envelope.template_aad("org_1", "cus_1", "enr_1", CONTRACT.model_id, 128, "fp16"),
        )
        connection.execute(
            sa.text(
                "INSERT INTO enrollments (enrollment_id, org_id, customer_id, source,"
                " source_priority, model_id, model_version, dimension, template_format,"
                " sealed_template, data_key_id, active, created_at, gallery_seq) VALUES"
                " ('enr_1', 'org_1', 'cus_1', 'dukcapil', 1, :model, '', 128, 'fp16', :sealed,"
                " 'dk_template', :active, :now, 1)"
            ),
            {
                "model": CONTRACT.model_id,
                "sealed": sealed,
                "active": True,
                "now": NOW.replace(tzinfo=None),
            },
        )
        connection.execute(
            sa.text(
                "INSERT INTO gallery_heads (org_id, last_seq, updated_at) VALUES ('org_1', 1, :now)"
            ),
            {"now": NOW.replace(tzinfo=None)},
        )
    engine.dispose()
    return wrapped


def test_a_single_history_database_is_adopted_with_its_data(empty_url: str, capsys) -> None:
    url = empty_url
    migrate.upgrade(url, legacy_schema.HISTORY, "0005")
    kms = LocalKms(generate("kek-1"))
    vector = np.random.default_rng(5).standard_normal(128).astype(np.float32)
    vector /= np.linalg.norm(vector)
    wrapped = _seed_single_history(url, kms, vector)

    assert identity(["migrate", "--database-url", url]) == 0
    assert "adopted the single-history schema at 0005" in capsys.readouterr().out

    tables = _tables(url)
    assert "alembic_version" not in tables and "data_keys" not in tables
    for history in HISTORIES:
        assert migrate.is_at_head(url, history)
        assert migrate.schema_differences(url, history) == [], history.owner
    # No table refers to another owner's any more.
    for table in OWNED["matching"] | OWNED["liveness"]:
        assert "orgs" not in _foreign_keys(url, table), table
    assert _foreign_keys(url, "enrollments") == {"matching_data_keys"}
    assert _foreign_keys(url, "capture_bundles") == {
        "kyc_data_keys",
        "customers",
        "orgs",
        "verifications",
    }
    # The keys moved to their owners as they were (a destroyed one stays destroyed).
    engine = make_engine(url)
    with engine.connect() as connection:
        moved = {
            table: dict(
                connection.execute(sa.text(f"SELECT key_id, wrapped_key FROM {table}")).all()
            )
            for table in ("kyc_data_keys", "matching_data_keys")
        }
    engine.dispose()
    assert moved == {
        "kyc_data_keys": {"dk_pii": wrapped["dk_pii"], "dk_bundle": None},
        "matching_data_keys": {"dk_template": wrapped["dk_template"]},
    }
    # Matching opens the template sealed before the adoption.
    store = EnrollmentStore(DataKeyStore(kms, matching.DataKey, cache_size=0), CONTRACT)
    database = Database(url)
    with database.transaction() as session:
        reference = store.active_reference(session, "org_1", "cus_1")
    database.dispose()
    assert float(reference.vector @ vector) > 0.999

    # Again: nothing to adopt, nothing to do.
    assert identity(["migrate", "--database-url", url]) == 0
    assert "adopted" not in capsys.readouterr().out


def test_an_unknown_version_table_is_left_alone(tmp_path, capsys) -> None:
    """Another application's alembic_version in the same database is not ours to adopt."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(sa.text("INSERT INTO alembic_version VALUES ('f00dcafe')"))
    engine.dispose()
    assert identity(["migrate", "--database-url", url]) == 2
    assert "not a revision of this platform's single history" in capsys.readouterr().err
    assert _tables(url) == {"alembic_version"}


def test_an_older_single_history_revision_is_brought_forward_and_adopted(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, legacy_schema.HISTORY, "0001")
    migrate_all(url)
    assert "alembic_version" not in _tables(url)
    for history in HISTORIES:
        assert migrate.schema_differences(url, history) == [], history.owner
