"""The outbound deadline and the pool of delivery slots (probe 6, D1): an
attempt ends by the poster's timeout however slowly the receiver answers;
a delivering process keeps up to its concurrency of attempts in flight and
claims again as a slot frees (not when a whole batch is done), fairly
between the owners: an owner's attempts in flight count as turns it has had
(re-probe 6, D1); a claim lasts longer than its attempt can."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Hashable, Mapping
from datetime import timedelta

import pytest

from identity_runtime.deliveries import (
    DeliveryPool,
    claim_lease,
    fair_share,
    settled,
    taking_turns,
)
from identity_runtime.egress import GuardedPoster
from identity_runtime.logs import get_logger
from tests.support.slow_receiver import TricklingReceiver


async def test_a_trickling_receiver_ends_the_attempt_at_the_deadline() -> None:
    slow = await TricklingReceiver().start()
    try:
        result = await GuardedPoster(True, 0.5).post(slow.url, b"{}", [])
        assert (result.delivered, result.error) == (False, "timeout")
        await asyncio.wait_for(slow.abandoned.wait(), 30)  # the poster hung up
        assert slow.requests == 1
    finally:
        await slow.stop()


async def test_a_receiver_answering_within_the_deadline_is_delivered() -> None:
    prompt = await TricklingReceiver(released=True).start()
    try:
        result = await GuardedPoster(True, 5.0).post(prompt.url, b"{}", [])
        assert (result.delivered, result.http_status, result.error) == (True, 200, "")
    finally:
        await prompt.stop()


def test_owners_take_turns_each_keeping_its_own_order() -> None:
    items = ["a1", "a2", "a3", "b1", "c1", "b2"]
    assert taking_turns(items, lambda item: item[0]) == ["a1", "b1", "c1", "a2", "b2", "a3"]
    assert taking_turns([], lambda item: item) == []


def test_owners_with_attempts_in_flight_take_their_turns_after_the_others() -> None:
    items = ["a1", "a2", "b1", "c1", "c2"]
    # a has two attempts in flight, c one: b's row goes first, then c's, then a's.
    assert taking_turns(items, lambda item: item[0], {"a": 2, "c": 1}) == [
        "b1",
        "c1",
        "a1",
        "c2",
        "a2",
    ]


def test_a_claim_shares_the_free_slots_between_the_owners_of_the_due_rows() -> None:
    # Ten of a's rows due before b's one and c's two (in due order).
    window = [f"a{n:02}" for n in range(10)] + ["b00", "c00", "c01"]
    claimed = fair_share(window, lambda row: row[0], 4)
    # b's and c's rows are in the claim; each owner's own rows in due order.
    assert claimed == ["a00", "b00", "c00", "a01"]
    assert fair_share(window[:3], lambda row: row[0], 4) == ["a00", "a01", "a02"]
    # One free slot while a holds slots: b's row, though a's are older.
    assert fair_share(window, lambda row: row[0], 1, {"a": 15}) == ["b00"]
    assert fair_share(window, lambda row: row[0], 0) == []


class Due:
    """Rows due to a pool's claims, and the claims it made."""

    def __init__(self, *rows: str) -> None:
        self.rows = list(rows)
        self.claims: list[tuple[int, dict[Hashable, int]]] = []

    async def claim(self, room: int, busy: Mapping[Hashable, int]) -> list[str]:
        self.claims.append((room, dict(busy)))
        taken = fair_share(self.rows, lambda row: row[0], room, busy)
        self.rows = [row for row in self.rows if row not in taken]
        return taken


class Held:
    """A delivery that waits, per row, until the test releases it."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.begun: dict[str, asyncio.Event] = {}
        self.release: dict[str, asyncio.Event] = {}

    def event(self, table: dict[str, asyncio.Event], row: str) -> asyncio.Event:
        return table.setdefault(row, asyncio.Event())

    async def begin(self, *rows: str) -> None:
        for row in rows:
            await self.event(self.begun, row).wait()

    async def deliver(self, row: str) -> str:
        self.started.append(row)
        self.event(self.begun, row).set()
        await self.event(self.release, row).wait()
        return row.upper()


def pool(concurrency: int, on_free=None) -> DeliveryPool[str]:
    return DeliveryPool(lambda row: row[0], get_logger("test"), concurrency, on_free)


async def test_a_freed_slot_is_claimed_while_a_slow_attempt_is_still_in_flight() -> None:
    slots, due, held = pool(2), Due("s1", "f1"), Held()
    first = await slots.fill(due.claim, held.deliver)
    await held.begin("s1", "f1")
    assert held.started == ["s1", "f1"] and slots.free == 0
    # Full: nothing is claimed, the row due meanwhile waits for a slot.
    due.rows.append("g1")
    assert await slots.fill(due.claim, held.deliver) == []
    held.event(held.release, "f1").set()
    assert await first[1] == "F1"
    # f1's slot is free: g1 is started while s1 is still held.
    [second] = await slots.fill(due.claim, held.deliver)
    await held.begin("g1")
    assert not first[0].done() and slots.busy() == Counter({"s": 1, "g": 1})
    held.event(held.release, "s1").set()
    held.event(held.release, "g1").set()
    assert await settled([*first, second]) == ["S1", "F1", "G1"]
    assert slots.free == 2


async def test_an_owner_holding_slots_does_not_take_a_freed_one_from_another() -> None:
    slots, held = pool(3), Held()
    due = Due("a1", "a2", "a3", "a4", "a5")
    attempts = await slots.fill(due.claim, held.deliver)
    await held.begin("a1", "a2", "a3")
    assert held.started == ["a1", "a2", "a3"]
    due.rows.append("b1")  # due after a's backlog
    held.event(held.release, "a1").set()
    await attempts[0]
    [taken] = await slots.fill(due.claim, held.deliver)
    await held.begin("b1")
    # The claim was told a holds two slots; b's row got the freed one.
    assert due.claims[-1] == (1, {"a": 2})
    assert held.started[-1] == "b1" and due.rows == ["a4", "a5"]
    await slots.close()
    assert taken.cancelled() and slots.free == 3


async def test_a_freed_slot_wakes_the_relay_and_fills_count_each_slot_once() -> None:
    woken = asyncio.Event()
    slots, held = pool(2, woken.set), Held()
    due = Due("a1", "b1", "c1")
    # Two fills at once (a loop's and a flush's): two slots, two attempts.
    filled = await asyncio.gather(
        slots.fill(due.claim, held.deliver), slots.fill(due.claim, held.deliver)
    )
    assert sorted(len(f) for f in filled) == [0, 2] and due.rows == ["c1"]
    assert not woken.is_set()
    held.event(held.release, "a1").set()
    await woken.wait()
    assert slots.free == 1
    await slots.close()


async def test_a_failed_attempt_frees_its_slot_and_the_others_still_run() -> None:
    attempted: list[str] = []

    async def deliver(row: str) -> str:
        attempted.append(row)
        if row == "b1":
            raise RuntimeError("settling failed")
        return row

    slots = pool(3)
    attempts = await slots.fill(Due("a1", "b1", "c1").claim, deliver)
    with pytest.raises(RuntimeError):
        await settled(attempts)
    assert sorted(attempted) == ["a1", "b1", "c1"] and slots.free == 3


async def test_closing_cancels_the_attempts_in_flight() -> None:
    slots, held = pool(2), Held()
    attempts = await slots.fill(Due("a1", "b1").claim, held.deliver)
    await held.begin("a1", "b1")
    await slots.close()
    assert all(attempt.cancelled() for attempt in attempts) and slots.free == 2


async def test_waiting_for_a_slot_ends_when_one_frees_or_at_the_stop() -> None:
    slots, held, stop = pool(1), Held(), asyncio.Event()
    [attempt] = await slots.fill(Due("a1").claim, held.deliver)
    waiting = asyncio.create_task(slots.wait_freed(3600, stop))
    held.event(held.release, "a1").set()
    await attempt
    await waiting  # the freed slot ended the wait, not the hour
    stop.set()
    await slots.wait_freed(3600, stop)


def test_the_claim_lease_covers_the_attempt() -> None:
    assert claim_lease(10.0) > timedelta(seconds=10)
    assert claim_lease(120.0) > timedelta(seconds=120)
