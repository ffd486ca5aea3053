"""The webhook dispatcher claims again as its slots free up, not when a
whole batch is done (the deliveries' pool, identity_runtime.deliveries), on
SQLite and PostgreSQL (the fixtures of test_webhooks):

- a delivery that falls due while a slow endpoint's attempt holds a slot is
  posted while that attempt is still open (unsettled);
- an organisation holding slots does not take a freed one while another
  organisation has a due delivery, though its own are older;
- two dispatchers (two processes) never post one delivery at once, and
  each delivery is posted once;
- stopping the dispatcher cancels the attempt in flight without an error;
  its delivery stays claimed until the lease ends, then is sent again;
- an attempt is recorded at the time it was made, not when the pass began.

The dispatchers here are the tests' own (the service's sleeps an hour
between polls); receivers and posters wait on events, not on time.
"""

# ruff: noqa: F811 - the module fixtures of test_webhooks are imported, then requested by name

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from sqlalchemy import select, update

from identity_runtime.egress import GuardedPoster
from identity_store.db import Database
from identity_store.types import utcnow
from services.kyc_tier import models, webhook_outbox
from services.kyc_tier.webhook_outbox import Dispatcher
from services.kyc_tier.webhook_targets import Sender
from tests.service.test_webhook_deadline import fast, queued, slow  # noqa: F401 - fixtures
from tests.service.test_webhooks import (  # noqa: F401 - the shared module fixtures
    client,
    database_url,
    fakes,
    kyc_tier,
)
from tests.support.held_poster import HeldPoster

pytestmark = [pytest.mark.postgres]

# Long enough that no attempt here ends by its deadline.
TIMEOUT_SECONDS = 120.0


def dispatcher(kyc_tier, poster: HeldPoster | None = None) -> Dispatcher:
    """A dispatcher of its own (another process, as far as the database can
    tell) polling hourly: it claims when it starts, is woken, or a slot frees."""
    flow = kyc_tier.core.dispatcher.flow
    sender = Sender(poster or GuardedPoster(True, TIMEOUT_SECONDS))
    return Dispatcher(dataclasses.replace(flow, sender=sender), 3, poll_seconds=3600)


@pytest.fixture
async def quiet(database_url: str, kyc_tier) -> AsyncIterator[None]:
    """No delivery of another test is due: the slots are this test's."""
    database = Database(database_url)
    try:
        await database.run(
            lambda s: s.execute(
                update(models.WebhookDelivery)
                .where(models.WebhookDelivery.state == "pending")
                .values(state="failed")
            )
        )
    finally:
        database.dispose()
    yield


async def deliveries(database_url: str, ids: Sequence[str]) -> dict[str, models.WebhookDelivery]:
    def read(session) -> dict[str, models.WebhookDelivery]:
        rows = session.scalars(
            select(models.WebhookDelivery).where(models.WebhookDelivery.delivery_id.in_(ids))
        ).all()
        for row in rows:
            session.expunge(row)
        return {row.delivery_id: row for row in rows}

    database = Database(database_url)
    try:
        return await database.run(read)
    finally:
        database.dispose()


async def attempts(database_url: str, delivery_id: str) -> list[models.WebhookAttempt]:
    def read(session) -> list[models.WebhookAttempt]:
        rows = session.scalars(
            select(models.WebhookAttempt).where(models.WebhookAttempt.delivery_id == delivery_id)
        ).all()
        for row in rows:
            session.expunge(row)
        return list(rows)

    database = Database(database_url)
    try:
        return await database.run(read)
    finally:
        database.dispose()


def due_now() -> datetime:
    """A start of `queued` deliveries (a second apart) all due now."""
    return utcnow() - timedelta(minutes=1)


async def test_a_delivery_due_while_a_slow_attempt_is_in_flight_is_sent_before_it_ends(
    database_url, client, kyc_tier, quiet, slow, fast
) -> None:
    relay = dispatcher(kyc_tier)
    try:
        [held] = await queued(database_url, client, slow.url, 1, due_now())
        relay.start()
        await asyncio.wait_for(slow.arrived.wait(), 30)
        # Falls due while the slow attempt holds its slot; the poll comes.
        [prompt] = await queued(database_url, client, fast.url, 1, due_now())
        relay.wake()
        await asyncio.wait_for(fast.arrived.wait(), 30)
        # The slow attempt is still open and unsettled.
        assert slow.serving == 1 and not slow.abandoned.is_set()
        assert (await deliveries(database_url, [held]))[held].attempts == 0
        slow.release.set()
        await relay.pool.drain()
    finally:
        await relay.stop()
    rows = await deliveries(database_url, [held, prompt])
    assert [(rows[i].state, rows[i].attempts) for i in (held, prompt)] == [("delivered", 1)] * 2
    # Each attempt recorded at its own time: the prompt one's began later.
    [first] = await attempts(database_url, held)
    [later] = await attempts(database_url, prompt)
    assert later.attempted_at > first.attempted_at


async def test_an_organisation_holding_slots_does_not_take_a_freed_one_from_another(
    database_url, client, kyc_tier, quiet
) -> None:
    poster = HeldPoster()
    relay = dispatcher(kyc_tier, poster)
    relay.pool.concurrency = 3
    a_url, b_url = "http://a.example/hook", "http://b.example/hook"
    try:
        backlog = await queued(database_url, client, a_url, 6, utcnow() - timedelta(minutes=5))
        relay.start()
        await poster.posted(3)
        # Due after the whole backlog of the organisation holding every slot.
        [prompt] = await queued(database_url, client, b_url, 1, due_now())
        poster.release(a_url)  # one slot frees: the relay claims again at once
        await poster.posted(4)
        assert poster.urls() == [a_url] * 3 + [b_url]
        poster.release()
        await poster.posted(7)
        await relay.pool.drain()
    finally:
        await relay.stop()
    rows = await deliveries(database_url, [*backlog, prompt])
    assert {(row.state, row.attempts) for row in rows.values()} == {("delivered", 1)}
    assert poster.overlapping == 0


async def test_two_dispatchers_never_post_one_delivery_at_once(
    database_url, client, kyc_tier, quiet
) -> None:
    poster = HeldPoster()
    first, second = dispatcher(kyc_tier, poster), dispatcher(kyc_tier, poster)
    urls = [f"http://org{n}.example/hook" for n in range(3)]
    ids = list(
        itertools.chain.from_iterable(
            [await queued(database_url, client, url, 14, due_now()) for url in urls]
        )
    )
    try:
        # (One after the other: a claim skips the rows another claim is
        # locking at that moment, and an idle dispatcher then waits a poll.)
        first.start()
        await poster.posted(16)
        second.start()
        # Both full (16 each), every post a different delivery.
        await poster.posted(32)
        assert len(poster.events()) == 32
        assert first.pool.free == second.pool.free == 0
        # As slots free, both claim the rest (woken by their own attempts).
        poster.release()
        await poster.posted(len(ids))
        await first.pool.drain()
        await second.pool.drain()
    finally:
        await first.stop()
        await second.stop()
    rows = await deliveries(database_url, ids)
    assert {(row.state, row.attempts) for row in rows.values()} == {("delivered", 1)}
    assert len(poster.events()) == len(ids) == len(poster.posts)
    assert poster.overlapping == 0


async def test_stopping_cancels_the_attempt_in_flight_and_its_delivery_comes_back(
    database_url, client, kyc_tier, quiet, slow
) -> None:
    relay = dispatcher(kyc_tier)
    [held] = await queued(database_url, client, slow.url, 1, due_now())
    with structlog.testing.capture_logs() as logged:
        relay.start()
        await asyncio.wait_for(slow.arrived.wait(), 30)
        await relay.stop()
        await asyncio.wait_for(slow.abandoned.wait(), 30)  # the connection was dropped
    # Nothing logged as failed (the cancelled attempt is no error).
    assert [e for e in logged if e["log_level"] in ("error", "critical")] == []
    assert [e for e in logged if "fail" in e["event"]] == []
    row = (await deliveries(database_url, [held]))[held]
    assert (row.state, row.attempts) == ("pending", 0)
    claimed_until = row.claimed_until
    if claimed_until.tzinfo is None:  # SQLite's are naive (UTC)
        claimed_until = claimed_until.replace(tzinfo=UTC)
    assert claimed_until > utcnow()
    # Still leased: no one claims it; once the lease has ended, it is sent.
    again = dispatcher(kyc_tier)
    assert await again.flush(utcnow()) == 0
    slow.release.set()
    assert await again.flush(claimed_until + timedelta(seconds=1)) == 1
    assert slow.requests == 2
    row = (await deliveries(database_url, [held]))[held]
    assert (row.state, row.attempts) == ("delivered", 1)


class Ticking:
    """The time one second further on each reading; the times it gave."""

    def __init__(self) -> None:
        self.start = utcnow()
        self.given: list[datetime] = []
        self._seconds = itertools.count()

    def __call__(self) -> datetime:
        self.given.append(self.start + timedelta(seconds=next(self._seconds)))
        return self.given[-1]


async def test_an_attempt_is_recorded_at_the_time_it_was_made(
    database_url, client, kyc_tier, quiet, fast, monkeypatch
) -> None:
    [sent] = await queued(database_url, client, fast.url, 1, due_now())
    clock = Ticking()
    monkeypatch.setattr(webhook_outbox, "utcnow", clock)
    assert await dispatcher(kyc_tier).flush() == 1
    monkeypatch.undo()
    [attempt] = await attempts(database_url, sent)
    row = (await deliveries(database_url, [sent]))[sent]
    # The pass (and its claim) read the first time; the attempt a later one,
    # before it was settled.
    naive = [t.replace(tzinfo=None) for t in (attempt.attempted_at, row.finished_at)]
    assert clock.given[0].replace(tzinfo=None) < naive[0] < naive[1]
