"""A webhook attempt ends by KYC_TIER_WEBHOOK_TIMEOUT_SECONDS whatever the
receiver does (probe 6, D1), through the REST gateway on both databases (the
fixtures of test_webhooks: the timeout is 3 s there):

- the test route to a receiver trickling its answer reports
  `{delivered: false, error: "timeout"}`, not the gateway's 504;
- one organisation's trickling endpoint does not hold up another
  organisation's webhook claimed in the same batch;
- a second replica does not claim a delivery still in flight (the lease
  covers the attempt's deadline).
"""

# ruff: noqa: F811 - the module fixtures of test_webhooks are imported, then requested by name

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from identity_runtime.egress import GuardedPoster
from identity_store.types import utcnow
from services.kyc_tier.webhook_outbox import Dispatcher
from services.kyc_tier.webhook_targets import Sender
from tests.service import test_webhooks as hooks
from tests.service.test_webhooks import (  # noqa: F401 - the shared module fixtures
    client,
    database_url,
    fakes,
    kyc_tier,
)
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
