"""Rollback-safe migrations (docs/migrations.md): a service runs on its own
head or on a newer schema that still declares it compatible; it refuses an
older, empty or contracted-past schema. Migrations bound their lock waits.

"The previous release" is SIMULATED: today's code with its history pinned to
the revision before the head (a copy of the versions directory without the
newest migration), because releases before this change refuse any schema but
their exact head. The start-up check and the service's readiness run for
real on PostgreSQL (and SQLite), on a schema `identity migrate` took to the
newest head.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from identity_cli.schema import HISTORIES, migrate_all
from identity_store import compat, migrate
from identity_store.db import Database, make_engine
from identity_store.migrate import History
from services.face_match.migrations import HISTORY as FACE_MATCH
from services.kyc_tier import bootstrap as kyc_bootstrap
from services.kyc_tier.migrations import HISTORY as KYC_TIER
from tests.support.kyc_fakes import KycFakes, fake_kyc_core, new_org


def pinned(history: History, tmp_path: Path, revision: str) -> History:
    """`history` as a release whose newest migration is `revision`: its
    migrations after `revision` are left out of a copy of its directory."""
    scripts = migrate.script_directory(history)
    later = {
        s.revision for s in scripts.iterate_revisions(migrate.head_revision(history), revision)
    }
    later.discard(revision)
    directory = tmp_path / f"{history.owner}-at-{revision}"
    shutil.copytree(history.directory, directory, ignore=shutil.ignore_patterns("__pycache__"))
    for path in (directory / "versions").glob("*.py"):
        if any(f'revision = "{r}"' in path.read_text() for r in later):
            path.unlink()
    previous = dataclasses.replace(history, directory=directory)
    assert migrate.head_revision(previous) == revision
    return previous


def previous_release(history: History, tmp_path: Path) -> History:
    head = migrate.head_revision(history)
    down = migrate.script_directory(history).get_revision(head).down_revision
    assert isinstance(down, str), f"{history.owner} has a single revision"
    return pinned(history, tmp_path, down)


def test_every_history_declares_a_known_minimum_compatible_revision() -> None:
    for history in HISTORIES:
        known = {s.revision for s in migrate.script_directory(history).walk_revisions()}
        assert history.minimum_compatible in known, history.owner


def test_previous_release_starts_on_the_newest_schema_on_postgresql(
    postgres_schema_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """helm rollback after an upgrade migrated the schema: the previous
    release's kyc-tier builds and reports ready, and serves a write."""
    url = postgres_schema_url
    migrate_all(url)
    # The oldest release the newest schema still serves (several expand-only
    # migrations may lie between it and the head).
    previous = pinned(KYC_TIER, tmp_path, KYC_TIER.minimum_compatible)
    assert compat.schema_problem(url, previous) is None
    assert compat.schema_problem(url, previous_release(KYC_TIER, tmp_path / "last")) is None
    assert compat.schema_problem(url, previous_release(FACE_MATCH, tmp_path)) is None

    monkeypatch.setattr(kyc_bootstrap, "HISTORY", previous)

    async def start() -> tuple[bool, str]:
        async with fake_kyc_core(url, KycFakes()) as core:
            await new_org(core)
            return await core.ready()

    ready, reason = asyncio.run(start())
    assert ready, reason


def test_a_schema_contracted_past_the_release_is_refused(database_url: str, tmp_path: Path) -> None:
    """kyc-tier's newest schema serves code from 0100_console on: a release at 0002 is refused."""
    older = pinned(KYC_TIER, tmp_path, "0002")
    problem = compat.schema_problem(database_url, older)
    assert problem is not None
    assert "serves code from revision 0100_console on" in problem


def test_a_schema_behind_the_code_or_empty_is_refused(database_url: str) -> None:
    migrate.downgrade(database_url, KYC_TIER, "0100_console")
    problem = compat.schema_problem(database_url, KYC_TIER)
    assert problem is not None and "behind this release's" in problem
    # A downgrade clears the record: only code that knows the revision runs on it.
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            assert compat.recorded_minimum(connection, KYC_TIER) is None
    finally:
        engine.dispose()
    migrate.downgrade(database_url, KYC_TIER, "base")
    problem = compat.schema_problem(database_url, KYC_TIER)
    assert problem is not None and "do not exist" in problem


def test_services_refuse_to_build_on_an_incompatible_schema(database_url: str) -> None:
    from services.matching.migrations import HISTORY as MATCHING

    migrate.downgrade(database_url, MATCHING, "base")
    database = Database(database_url)

    with pytest.raises(RuntimeError, match="matching: its tables do not exist"):
        asyncio.run(migrate.require_compatible(database, MATCHING, "matching"))


def test_migrations_give_up_on_a_held_lock_on_postgresql(
    postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lock_timeout: a migration blocked by a long transaction fails instead of
    queueing every later query on the table behind it."""
    url = postgres_schema_url
    migrate.upgrade(url, KYC_TIER)
    migrate.downgrade(url, KYC_TIER, "0100_console")
    monkeypatch.setenv(migrate.LOCK_TIMEOUT_ENV, "200ms")
    engine = make_engine(url)
    try:
        with engine.connect() as blocker:
            blocker.execute(sa.text("LOCK TABLE webhooks IN ACCESS SHARE MODE"))
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                migrate.upgrade(url, KYC_TIER)
            blocker.rollback()
    finally:
        engine.dispose()
    assert migrate.current_revision(url, KYC_TIER) == "0100_console"
    migrate.upgrade(url, KYC_TIER)
    assert compat.schema_problem(url, KYC_TIER) is None
