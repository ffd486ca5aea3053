"""A Face Match callback attempt ends by the relay's timeout whatever the
receiver does (probe 6, D1), on SQLite and PostgreSQL:

- a receiver trickling its answer (a header byte at a time, each read well
  within httpcore's per-read timeout) fails the attempt as `timeout`, and
  another organisation's callback of the same batch is delivered while that
  attempt is still open;
- `lastAttemptAt` is when the attempt was made, not when it was claimed;
- a second relay (another process) does not claim a callback still in
  flight: the lease covers the attempt's deadline;
- a claim shares its batch between the organisations (re-probe 6, D1): an
  organisation's one due callback is claimed, and posted, in the same batch
  as another's backlog of older ones, each keeping its due order.
"""

# ruff: noqa: F811 - the fixtures of test_face_match_callback_delivery are imported, then requested by name

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from functools import partial

import pytest
import sqlalchemy as sa

from identity_runtime.deliveries import DELIVERY_CONCURRENCY
from identity_store.types import utcnow
from services.face_match.models import Callback
from tests.service.test_face_match import Partner
from tests.service.test_face_match_callback_delivery import (  # noqa: F401 - shared fixtures
    Clock,
    callback_row,
    finished,
    receiver,
    relay,
    service,
)
from tests.support import unique_name
from tests.support.slow_receiver import TricklingReceiver


@pytest.fixture
async def slow() -> AsyncIterator[TricklingReceiver]:
    trickling = await TricklingReceiver().start("/callback")
    yield trickling
    await trickling.stop()


class Ticking:
    """A clock one second further on each call; the times it gave."""

    def __init__(self) -> None:
        start = utcnow()
        self.given: list[datetime] = []
        self._seconds = itertools.count()
        self._start = start

    def __call__(self) -> datetime:
        self.given.append(self._start + timedelta(seconds=next(self._seconds)))
        return self.given[-1]


async def test_a_trickling_receiver_times_out_and_holds_up_no_other_callback(
    service, receiver, slow
) -> None:
    partner, other = Partner(service), Partner(service, "org_fm_other")
    try:
        held = await finished(service, partner, "trickled", slow.url)
        sent = await finished(service, other, "prompt", receiver.url)
    finally:
        await partner.close()
        await other.close()
    clock = Ticking()
    flushing = asyncio.create_task(relay(service, clock, timeout_seconds=0.5).flush())
    await asyncio.wait_for(receiver.arrived.wait(), 30)
    # Delivered while the trickling receiver's attempt was still open.
    assert slow.requests == 1 and slow.serving == 1
    await flushing
    await asyncio.wait_for(slow.abandoned.wait(), 30)  # the relay hung up

    row = callback_row(service, held.submission_id)
    assert (row.state, row.attempt_count, row.last_error) == ("pending", 1, "timeout")
    delivered = callback_row(service, sent.submission_id)
    assert delivered.state == "delivered"
    # The attempt's own time: after the claim (the clock's first reading),
    # before it was settled.
    claimed = clock.given[0].replace(tzinfo=None)  # SQLite's are naive
    attempted = delivered.last_attempt_at.replace(tzinfo=None)
    assert claimed < attempted < delivered.delivered_at.replace(tzinfo=None)


async def test_a_second_relay_does_not_claim_a_callback_in_flight(service, slow) -> None:
    partner = Partner(service)
    try:
        created = await finished(service, partner, "in-flight", slow.url)
    finally:
        await partner.close()
    now = Clock(utcnow())
    # Two processes whose attempts may last 120 s.
    first = relay(service, now, timeout_seconds=120.0)
    flushing = asyncio.create_task(first.flush())
    await asyncio.wait_for(slow.arrived.wait(), 30)
    # Past the 60 s a claim used to last: still hidden, not posted again.
    later = Clock(now.now + timedelta(seconds=61))
    assert await relay(service, later, timeout_seconds=120.0).flush() == 0
    assert slow.requests == 1
    slow.release.set()
    assert await flushing == 1
    row = callback_row(service, created.submission_id)
    assert (row.state, row.attempt_count) == ("delivered", 1)
    assert first.lease > timedelta(seconds=120)


def queued(service, org_id: str, url: str, due: list[datetime]) -> list[str]:
    """Pending callbacks of `org_id` to `url`, one due at each time; their ids."""
    rows = [
        Callback(
            callback_id=unique_name("cb"),
            submission_id=unique_name("sub"),
            org_id=org_id,
            url=url,
            body="{}",
            state="pending",
            attempt_count=0,
            next_attempt_at=at,
        )
        for at in due
    ]
    with service.core.database.transaction() as session:
        session.add_all(rows)
    return [row.callback_id for row in rows]


def backlog(service, slow_url: str, prompt_url: str) -> tuple[list[str], str]:
    """A batch and more of org A's callbacks due before org B's one."""
    start = utcnow() - timedelta(minutes=10)
    older = [start + timedelta(seconds=n) for n in range(DELIVERY_CONCURRENCY + 4)]
    slow = queued(service, "org_fm_a", slow_url, older)
    [prompt] = queued(service, "org_fm_b", prompt_url, [start + timedelta(minutes=5)])
    return slow, prompt


async def test_a_backlog_of_one_organisation_leaves_room_for_another_in_the_claim(
    service,
) -> None:
    slow, prompt = backlog(service, "http://127.0.0.1:9/slow", "http://127.0.0.1:9/prompt")
    claimed = await service.core.database.run(
        partial(relay(service)._claim, DELIVERY_CONCURRENCY, {})
    )
    ids = [c.callback_id for c in claimed]
    assert len(ids) == DELIVERY_CONCURRENCY and prompt in ids
    # The backlog's share is its oldest rows, in due order (other rows due in
    # the test database take their turns too).
    share = [i for i in ids if i in slow]
    assert share == slow[: len(share)] and len(share) >= DELIVERY_CONCURRENCY // 2


async def test_a_backlog_of_slow_callbacks_does_not_hold_up_another_organisations(
    service, receiver, slow
) -> None:
    trickled, prompt = backlog(service, slow.url, receiver.url)
    flushing = asyncio.create_task(relay(service, timeout_seconds=0.5).flush())
    arriving = asyncio.create_task(receiver.arrived.wait())
    await asyncio.wait({flushing, arriving}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    # Posted in the first batch, while org A's attempts were still open.
    assert arriving.done() and not flushing.done()
    await flushing
    with service.core.database.transaction() as session:
        rows = {row.callback_id: row for row in session.scalars(sa.select(Callback))}
        assert rows[prompt].state == "delivered"
        # Org A's share was its oldest callbacks: the newest were not tried.
        tried = [rows[i].attempt_count for i in trickled]
    assert tried == sorted(tried, reverse=True) and tried[-5:] == [0] * 5 and tried[0] == 1
