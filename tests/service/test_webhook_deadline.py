"""A webhook attempt ends by KYC_TIER_WEBHOOK_TIMEOUT_SECONDS whatever the
receiver does (probe 6, D1), through the REST gateway on both databases (the
fixtures of test_webhooks: the timeout is 3 s there):

- the test route to a receiver trickling its answer reports
  `{delivered: false, error: "timeout"}`, not the gateway's 504;
- one organisation's trickling endpoint does not hold up another
  organisation's webhook claimed in the same batch;
- a second replica does not claim a delivery still in flight (the lease
  covers the attempt's deadline);
- a claim shares its batch between the organisations (re-probe 6, D1): an
  organisation's one due delivery is claimed, and posted, in the same batch
  as another's backlog of older ones, each keeping its due order.
"""

# ruff: noqa: F811 - the module fixtures of test_webhooks are imported, then requested by name

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from identity_runtime.deliveries import DELIVERY_CONCURRENCY
from identity_runtime.egress import GuardedPoster
from identity_store.db import Database
from identity_store.types import utcnow
from services.kyc_tier import models
from services.kyc_tier.webhook_outbox import Dispatcher
from services.kyc_tier.webhook_targets import Sender
from tests.service import test_webhooks as hooks
from tests.service.test_webhooks import (  # noqa: F401 - the shared module fixtures
    client,
    database_url,
    fakes,
    kyc_tier,
)
from tests.support import unique_name
from tests.support.slow_receiver import TricklingReceiver

pytestmark = [pytest.mark.postgres]


@pytest.fixture
async def slow() -> AsyncIterator[TricklingReceiver]:
    receiver = await TricklingReceiver().start()
    yield receiver
    await receiver.stop()


@pytest.fixture
async def fast() -> AsyncIterator[TricklingReceiver]:
    receiver = await TricklingReceiver(released=True).start()
    yield receiver
    await receiver.stop()


async def test_the_test_route_reports_a_trickling_receiver_as_a_timeout(
    database_url, client, slow
) -> None:
    headers = await hooks.partner(database_url)
    webhook_id, _, _ = await hooks._hook_and_customer(client, headers, slow.url)
    tested = await client.post(
        f"/api/identity/webhooks/{webhook_id}/test", json={}, headers=headers
    )
    assert tested.status_code == 200, tested.text
    assert tested.json()["delivered"] is False
    assert tested.json()["error"] == "timeout"
    assert slow.requests == 1
    await asyncio.wait_for(slow.abandoned.wait(), 30)  # the connection was dropped


async def test_a_slow_endpoint_does_not_hold_up_another_organisations_webhook(
    database_url, client, kyc_tier, slow, fast
) -> None:
    slow_hook, _, _ = await hooks._hook_and_customer(
        client, await hooks.partner(database_url), slow.url
    )
    fast_hook, _, _ = await hooks._hook_and_customer(
        client, await hooks.partner(database_url), fast.url
    )
    flushing = asyncio.create_task(kyc_tier.core.dispatcher.flush())
    await asyncio.wait_for(fast.arrived.wait(), 30)
    # The fast receiver got its webhook while the slow one's attempt was open.
    assert slow.requests == 1 and slow.serving == 1
    await flushing
    [(delivery, attempts)] = await hooks._deliveries(database_url, slow_hook)
    assert delivery.state == "pending"
    assert [a.error for a in attempts] == ["timeout"]
    [(delivery, attempts)] = await hooks._deliveries(database_url, fast_hook)
    assert delivery.state == "delivered"
    assert [(a.http_status, a.error) for a in attempts] == [(200, "")]


async def test_a_second_replica_does_not_claim_a_delivery_in_flight(
    database_url, client, kyc_tier, slow
) -> None:
    webhook_id, _, _ = await hooks._hook_and_customer(
        client, await hooks.partner(database_url), slow.url
    )
    # Two replicas whose attempts may last 120 s.
    flow = dataclasses.replace(
        kyc_tier.core.dispatcher.flow, sender=Sender(GuardedPoster(True, 120.0))
    )
    first, second = Dispatcher(flow, disable_after=3), Dispatcher(flow, disable_after=3)
    now = utcnow()
    flushing = asyncio.create_task(first.flush(now))
    await asyncio.wait_for(slow.arrived.wait(), 30)
    # Past the 60 s the claim used to last: still claimed, nothing sent twice.
    await second.flush(now + timedelta(seconds=61))
    assert slow.requests == 1
    slow.release.set()
    await flushing
    [(delivery, attempts)] = await hooks._deliveries(database_url, webhook_id)
    assert delivery.state == "delivered" and len(attempts) == 1
    assert first.lease > timedelta(seconds=120)


async def queued(database_url: str, client, url: str, count: int, start) -> list[str]:
    """A new organisation's webhook to `url` and `count` pending deliveries
    to it, due a second apart from `start`; their ids in due order."""
    created = await client.post(
        "/api/identity/webhooks",
        json={"url": url, "events": ["kyc.tier_changed"]},
        headers=await hooks.partner(database_url),
    )
    assert created.status_code == 200, created.text
    webhook_id = created.json()["webhook"]["webhookId"]

    def add(session) -> list[str]:
        org_id = session.get(models.Webhook, webhook_id).org_id
        rows = [
            models.WebhookDelivery(
                delivery_id=unique_name("dlv"),
                event_id=unique_name("evt"),
                webhook_id=webhook_id,
                org_id=org_id,
                event_type="kyc.tier_changed",
                body=b"{}",
                next_attempt_at=start + timedelta(seconds=n),
            )
            for n in range(count)
        ]
        session.add_all(rows)
        return [row.delivery_id for row in rows]

    database = Database(database_url)
    try:
        return await database.run(add)
    finally:
        database.dispose()


async def backlog(database_url: str, client, slow_url: str, prompt_url: str):
    """A batch and more of one organisation's deliveries due before another's one."""
    start = utcnow() - timedelta(minutes=10)
    slow = await queued(database_url, client, slow_url, DELIVERY_CONCURRENCY + 4, start)
    [prompt] = await queued(database_url, client, prompt_url, 1, start + timedelta(minutes=5))
    return slow, prompt


async def test_a_backlog_of_one_organisation_leaves_room_for_another_in_the_claim(
    database_url, client, kyc_tier
) -> None:
    slow, prompt = await backlog(
        database_url, client, "http://127.0.0.1:9/a", "http://127.0.0.1:9/b"
    )
    dispatcher = kyc_tier.core.dispatcher
    now = utcnow()
    claimed = await dispatcher.flow.store.read(
        lambda s: dispatcher._claim(s, now, DELIVERY_CONCURRENCY, {})
    )
    ids = [due.delivery_id for due in claimed]
    assert len(ids) == DELIVERY_CONCURRENCY and prompt in ids
    # The backlog's share is its oldest rows, in due order (other rows due in
    # the test database take their turns too).
    share = [i for i in ids if i in slow]
    assert share == slow[: len(share)] and len(share) >= DELIVERY_CONCURRENCY // 2


async def test_a_backlog_of_slow_deliveries_does_not_hold_up_another_organisations(
    database_url, client, kyc_tier, slow, fast
) -> None:
    trickled, prompt = await backlog(database_url, client, slow.url, fast.url)
    flushing = asyncio.create_task(kyc_tier.core.dispatcher.flush())
    arriving = asyncio.create_task(fast.arrived.wait())
    await asyncio.wait({flushing, arriving}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    # Posted in the first batch, while the backlog's attempts were still open.
    assert arriving.done() and not flushing.done()
    slow.release.set()
    await flushing

    def states(session) -> dict[str, tuple[str, int]]:
        rows = session.scalars(select(models.WebhookDelivery))
        return {row.delivery_id: (row.state, row.attempts) for row in rows}

    database = Database(database_url)
    try:
        state = await database.run(states)
    finally:
        database.dispose()
    assert state[prompt] == ("delivered", 1)
    # The backlog's share was its oldest deliveries, in due order.
    tried = [state[i][1] for i in trickled]
    # (Once slots freed, the relay claimed the rest: nothing newer went first.)
    assert tried == sorted(tried, reverse=True) and tried[0] == 1
