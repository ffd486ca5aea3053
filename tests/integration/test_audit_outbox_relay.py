"""The audit outbox relay with company: two relays (two replicas, or a flush
beside the relay task) deliver every entry once, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.kyc_tier import outbox
from services.kyc_tier.bootstrap import KycTierCore
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
