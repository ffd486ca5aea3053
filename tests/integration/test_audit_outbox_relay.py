"""The audit outbox relay with company: two relays (two replicas, or a flush
beside the relay task) deliver every entry once, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from identity_store import migrate
from services.kyc_tier import models, outbox
from services.kyc_tier.bootstrap import KycTierCore
from services.kyc_tier.migrations import HISTORY as KYC_TIER
from services.kyc_tier.outbox import OutboxRelay, PendingEntry
from tests.support.kyc_fakes import KycFakes, fake_kyc_core, new_org


class HeldSink:
    """Records what it is given; holds its first delivery until released."""

    def __init__(self, delivered: list[int]) -> None:
        self.delivered = delivered
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def deliver(self, entry: PendingEntry) -> None:
        self.entered.set()
        await self.release.wait()
        self.delivered.append(entry.id)


@pytest.fixture
async def core(database_url: str) -> AsyncIterator[KycTierCore]:
    async with fake_kyc_core(database_url, KycFakes()) as built:
        await built.relay.stop()  # only the relays under test deliver
        yield built


async def queue(core: KycTierCore, org_id: str, count: int) -> None:
    def work(session: object) -> None:
        for n in range(count):
            outbox.record(session, org_id, "test.relay", f"test:{n}", "success")  # type: ignore[arg-type]

    await core.database.run(work)


async def test_a_relay_never_releases_the_lease_of_entries_another_relay_holds(
    core: KycTierCore,
) -> None:
    org_id = await new_org(core)
    delivered: list[int] = []
    first, second = HeldSink(delivered), HeldSink(delivered)
    relay_a = OutboxRelay(core.database, first)
    relay_b = OutboxRelay(core.database, second)

    await queue(core, org_id, 3)
    a = asyncio.create_task(relay_a.flush())
    async with asyncio.timeout(30):
        await first.entered.wait()  # relay A holds the first three
    await queue(core, org_id, 3)
    b = asyncio.create_task(relay_b.flush())
    async with asyncio.timeout(30):
        await second.entered.wait()  # relay B holds the next three

    first.release.set()  # A settles its batch and looks for more while B delivers
    async with asyncio.timeout(30):
        delivered_by_a = await a
    second.release.set()
    async with asyncio.timeout(30):
        delivered_by_b = await b

    assert (delivered_by_a, delivered_by_b) == (3, 3)
    assert len(delivered) == 6 and len(set(delivered)) == 6
    assert await relay_a.measure() == (0, 0.0)


async def test_the_migration_queues_again_the_sdk_session_entries_the_chain_refused(
    core: KycTierCore, database_url: str
) -> None:
    """probe5 P5-3: the audit service refused every `sdk_session:` actor and
    the relay set those entries aside for good; 0390 queues them again (and
    only them: another rejection stays an operator's to look at)."""
    org_id = await new_org(core)

    def rejected(session: Session) -> None:
        for actor, reason in (
            ("sdk_session:sdks_1", "INVALID_FIELD"),
            ("api_key:key_1", "INVALID_FIELD"),
            ("sdk_session:sdks_2", "ENTRY_REFUSED"),
        ):
            outbox.record(
                session, org_id, "device.register", "customer:cus_1", "success", actor=actor
            )
            session.flush()
            session.execute(
                update(models.AuditOutbox)
                .where(models.AuditOutbox.actor == actor)
                .values(rejected_reason=reason)
            )

    await core.database.run(rejected)
    migrate.downgrade(database_url, KYC_TIER, "0380_erased_outbox_digests")
    migrate.upgrade(database_url, KYC_TIER)

    def reasons(session: Session) -> dict[str, str | None]:
        rows = session.scalars(
            select(models.AuditOutbox).where(models.AuditOutbox.action == "device.register")
        )
        return {row.actor: row.rejected_reason for row in rows}

    assert await core.database.run(reasons) == {
        "sdk_session:sdks_1": None,
        "api_key:key_1": "INVALID_FIELD",
        "sdk_session:sdks_2": "ENTRY_REFUSED",
    }
