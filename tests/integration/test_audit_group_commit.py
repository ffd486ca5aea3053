"""The audit group-commit writer on a real database (both engines): bounded
groups, requests kept whole and in order, and a failed group fails every
caller in it with nothing written."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from identity_crypto.keyring import generate
from identity_runtime.errors import Unavailable
from identity_store.db import Database
from services.audit.appender import GroupCommitAppender
from services.audit.bootstrap import open_database
from services.audit.chain import Draft, Entry
from services.audit.log import AuditLog

KEYRING = generate("audit-group-commit")
SHA = "ef" * 32


class CountingLog(AuditLog):
    """The real AuditLog, remembering the size of each transaction's group."""

    def __init__(self) -> None:
        super().__init__(KEYRING)
        self.groups: list[int] = []

    def append(self, session: Session, drafts: list[Draft]) -> list[Entry]:
        self.groups.append(len(drafts))
        return super().append(session, drafts)


def draft(i: int) -> Draft:
    return Draft(
        tenant_id=f"org_{i % 2}",
        actor="service:kyc-tier",
        action="face.match",
        subject=f"customer:cus_{i}",
        outcome="success",
        request_id=f"r{i}",
        evidence_hashes={"probe": SHA},
        details={"n": str(i)},
    )


@pytest.fixture
def database(database_url: str):
    database = open_database(database_url)
    yield database
    database.dispose()


def head(database: Database) -> int:
    with database.transaction() as session:
        return AuditLog.lock_head(session)[0]


@pytest.mark.parametrize("writers", [1, 2])
async def test_groups_are_bounded_requests_stay_whole_and_the_chain_verifies(
    database: Database, writers: int
) -> None:
    audit_log = CountingLog()
    appender = GroupCommitAppender(database, audit_log, max_batch=4, max_wait=0.05, writers=writers)
    appender.start()
    try:
        singles = [appender.append(draft(i)) for i in range(10)]
        whole = appender.append_many([draft(100 + i) for i in range(6)])
        results = await asyncio.gather(*singles, whole)
    finally:
        await appender.close()
    single_entries: list[Entry] = results[:10]  # type: ignore[assignment]
    batch_entries: list[Entry] = results[10]  # type: ignore[assignment]
    # Groups never pass the bound, except a request larger than it, alone and whole.
    assert 6 in audit_log.groups
    assert all(size <= 4 for size in audit_log.groups if size != 6)
    assert sum(audit_log.groups) == 16 and len(audit_log.groups) >= 4
    assert [e.details["n"] for e in single_entries] == [str(i) for i in range(10)]
    assert [e.sequence for e in batch_entries] == list(
        range(batch_entries[0].sequence, batch_entries[0].sequence + 6)
    )
    assert sorted(e.sequence for e in [*single_entries, *batch_entries]) == list(range(1, 17))
    report = audit_log.verify(database.transaction)
    assert report.intact and report.entries_checked == 16


async def test_a_failed_group_fails_every_caller_and_writes_nothing(database: Database) -> None:
    audit_log = CountingLog()
    appender = GroupCommitAppender(database, audit_log, max_batch=64, max_wait=0.2)
    appender.start()
    try:
        first = await appender.append(draft(0))
        # The store breaks under the writer: the entries table is gone.
        with database.transaction() as session:
            session.execute(sa.text("ALTER TABLE audit_entries RENAME TO audit_entries_away"))
        calls = [appender.append(draft(i)) for i in range(1, 6)]
        calls.append(appender.append_many([draft(10), draft(11)]))
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        with database.transaction() as session:
            session.execute(sa.text("ALTER TABLE audit_entries_away RENAME TO audit_entries"))
        assert audit_log.groups[1:] == [7]  # one group, one transaction, failed whole
        assert all(isinstance(o, Unavailable) for o in outcomes), outcomes
        assert {o.reason for o in outcomes if isinstance(o, Unavailable)} == {
            "DEPENDENCY_UNAVAILABLE"
        }
        assert head(database) == 1  # nothing of the group: the head did not move
        after = await appender.append(draft(20))
    finally:
        await appender.close()
    assert (first.sequence, after.sequence) == (1, 2)
    assert after.previous_hmac == first.entry_hmac
    report = audit_log.verify(database.transaction)
    assert report.intact and report.entries_checked == 2


async def test_without_group_commit_each_request_is_its_own_transaction(
    database: Database,
) -> None:
    audit_log = CountingLog()
    appender = GroupCommitAppender(database, audit_log, group_commit=False)
    appender.start()
    try:
        results = await asyncio.gather(
            *(appender.append(draft(i)) for i in range(6)),
            appender.append_many([draft(10), draft(11), draft(12)]),
        )
    finally:
        await appender.close()
    assert sorted(audit_log.groups) == [1, 1, 1, 1, 1, 1, 3]
    batch_entries: list[Entry] = results[6]  # type: ignore[assignment]
    assert [e.sequence for e in batch_entries] == list(
        range(batch_entries[0].sequence, batch_entries[0].sequence + 3)
    )
    report = audit_log.verify(database.transaction)
    assert report.intact and report.entries_checked == 9
