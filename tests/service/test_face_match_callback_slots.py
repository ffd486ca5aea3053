"""The Face Match callback relay claims again as its slots free up, not
when a whole batch is done (the deliveries' pool, identity_runtime.deliveries),
on SQLite and PostgreSQL (the fixtures of test_face_match_callback_delivery):

- a callback that falls due while a slow receiver's attempt holds a slot is
  posted while that attempt is still open (unsettled; the service's relay
  loop, polling);
- an organisation holding slots does not take a freed one while another
  organisation has a due callback, though its own are older;
- two relays (two processes) never post one callback at once, and each
  callback is posted once;
- closing the service's relay cancels the attempt in flight without an
  error; the callback stays hidden until the lease ends, then is posted.

Receivers and posters wait on events, not on time.
"""

# ruff: noqa: F811 - the fixtures of test_face_match_callback_delivery are imported, then requested by name

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
import structlog

from identity_runtime.deliveries import settled
from identity_store.types import utcnow
from services.face_match.models import Callback
from services.face_match.worker import CallbackRelay
from tests.service.test_face_match_callback_deadline import queued
from tests.service.test_face_match_callback_delivery import (  # noqa: F401 - shared fixtures
    Clock,
    receiver,
    relay,
    service,
)
from tests.support.held_poster import HeldPoster
from tests.support.slow_receiver import TricklingReceiver

# Long enough that no attempt here ends by its deadline.
TIMEOUT_SECONDS = 120.0


@pytest.fixture
async def slow() -> AsyncIterator[TricklingReceiver]:
    # Gives up after a minute: past the tests' 30 s waits.
    trickling = await TricklingReceiver(limit=60.0).start("/callback")
    yield trickling
    await trickling.stop()


@pytest.fixture
def quiet(service) -> Iterator[None]:
    """No callback of another test is due: the slots are this test's."""
    with service.core.database.transaction() as session:
        session.execute(sa.update(Callback).where(Callback.state == "pending").values(state="dead"))
    yield


@contextlib.asynccontextmanager
async def relay_loop(service, relay: CallbackRelay) -> AsyncIterator[asyncio.Event]:
    """The service's relay loop (bootstrap) running `relay`, polling often;
    stopped (as the service stops) on leaving; yields its stop."""
    core = service.core
    core.relay, core._stop = relay, asyncio.Event()
    looping = asyncio.create_task(core._relay_loop(0.05))
    try:
        yield core._stop
    finally:
        core._stop.set()
        await looping
        await relay.close()


def rows(service, ids: list[str]) -> dict[str, Callback]:
    with service.core.database.transaction() as session:
        found = session.scalars(sa.select(Callback).where(Callback.callback_id.in_(ids))).all()
        for row in found:
            session.expunge(row)
    return {row.callback_id: row for row in found}


def due_now(count: int = 1) -> list:
    start = utcnow() - timedelta(minutes=1)
    return [start + timedelta(seconds=n) for n in range(count)]


async def test_a_callback_due_while_a_slow_attempt_is_in_flight_is_posted_before_it_ends(
    service, quiet, receiver, slow
) -> None:
    [held] = queued(service, "org_fm_a", slow.url, due_now())
    async with relay_loop(service, relay(service, timeout_seconds=TIMEOUT_SECONDS)):
        await asyncio.wait_for(slow.arrived.wait(), 30)
        # Falls due while the slow attempt holds its slot.
        [prompt] = queued(service, "org_fm_b", receiver.url, due_now())
        await asyncio.wait_for(receiver.arrived.wait(), 30)
        # The slow attempt is still open and unsettled.
        assert slow.serving == 1 and not slow.abandoned.is_set()
        assert rows(service, [held])[held].state == "pending"
        slow.release.set()
        await service.core.relay.pool.drain()
    found = rows(service, [held, prompt])
    assert [found[i].state for i in (held, prompt)] == ["delivered", "delivered"]
    assert found[prompt].last_attempt_at > found[held].last_attempt_at


async def test_an_organisation_holding_slots_does_not_take_a_freed_one_from_another(
    service, quiet
) -> None:
    poster = HeldPoster()
    relaying = relay(service)
    relaying.poster, relaying.pool.concurrency = poster, 3
    a_url, b_url = "http://a.example/callback", "http://b.example/callback"
    backlog = queued(service, "org_fm_a", a_url, [t - timedelta(minutes=5) for t in due_now(6)])
    first = await relaying.fill()
    await poster.posted(3)
    # Due after the whole backlog of the organisation holding every slot.
    [prompt] = queued(service, "org_fm_b", b_url, due_now())
    poster.release(a_url)
    await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
    [freed] = await relaying.fill()
    await poster.posted(4)
    assert poster.urls() == [a_url] * 3 + [b_url]
    poster.release()
    assert sum(await settled([*first, freed])) == 4
    # The rest of the backlog, in its turn.
    assert await relaying.flush() == 3
    found = rows(service, [*backlog, prompt])
    assert {(row.state, row.attempt_count) for row in found.values()} == {("delivered", 1)}
    assert poster.overlapping == 0


async def test_two_relays_never_post_one_callback_at_once(service, quiet) -> None:
    poster = HeldPoster()
    first, second = relay(service), relay(service)
    first.poster = second.poster = poster
    ids = [
        callback_id
        for org in ("org_fm_a", "org_fm_b", "org_fm_c")
        for callback_id in queued(service, org, f"http://{org}.example/cb", due_now(14))
    ]
    # Both full (16 each, claimed one after the other), every post a different callback.
    attempts = await first.fill()
    attempts += await second.fill()
    await poster.posted(32)
    assert len(poster.events()) == 32 and first.pool.free == second.pool.free == 0
    # A slot of each frees; both claim again, never a callback in flight.
    poster.release()
    await settled(attempts)
    assert await first.flush() + await second.flush() == len(ids) - 32
    found = rows(service, ids)
    assert {(row.state, row.attempt_count) for row in found.values()} == {("delivered", 1)}
    assert len(poster.events()) == len(ids) == len(poster.posts)
    assert poster.overlapping == 0


async def test_stopping_cancels_the_attempt_in_flight_and_its_callback_comes_back(
    service, quiet, slow
) -> None:
    [held] = queued(service, "org_fm_a", slow.url, due_now())
    with structlog.testing.capture_logs() as logged:
        async with relay_loop(service, relay(service, timeout_seconds=TIMEOUT_SECONDS)):
            await asyncio.wait_for(slow.arrived.wait(), 30)
        await asyncio.wait_for(slow.abandoned.wait(), 30)  # the connection was dropped
    # Nothing logged as failed (the cancelled attempt is no error).
    assert [e for e in logged if e["log_level"] in ("error", "critical")] == []
    assert [e for e in logged if "fail" in e["event"]] == []
    row = rows(service, [held])[held]
    assert (row.state, row.attempt_count, row.delivered_at) == ("pending", 1, None)
    hidden_until = row.next_attempt_at
    # Hidden until the lease ends; then another relay posts it.
    assert await relay(service).flush() == 0
    slow.release.set()
    later = Clock(hidden_until + timedelta(seconds=1))
    assert await relay(service, later).flush() == 1
    assert slow.requests == 2
    row = rows(service, [held])[held]
    assert (row.state, row.attempt_count) == ("delivered", 2)
