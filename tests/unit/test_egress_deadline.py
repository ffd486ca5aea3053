"""The outbound deadline and the concurrent delivery of a batch (probe 6,
D1): an attempt ends by the poster's timeout however slowly the receiver
answers; a batch's deliveries run concurrently, the owners taking turns,
its claim lasts longer than its attempts can, and shares a batch fairly
between the owners of the due rows it looks at (re-probe 6, D1)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from identity_runtime.deliveries import (
    DELIVERY_CONCURRENCY,
    claim_lease,
    claim_window,
    deliver_batch,
    fair_share,
    taking_turns,
)
from identity_runtime.egress import GuardedPoster
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


def test_a_claim_shares_its_batch_between_the_owners_of_the_due_rows() -> None:
    # Ten of a's rows due before b's one and c's two (in due order).
    window = [f"a{n:02}" for n in range(10)] + ["b00", "c00", "c01"]
    assert claim_window(4) >= len(window)
    claimed = fair_share(window, lambda row: row[0], 4)
    # b's and c's rows are in the batch; each owner's own rows in due order.
    assert claimed == ["a00", "b00", "c00", "a01"]
    assert fair_share(window[:3], lambda row: row[0], 4) == ["a00", "a01", "a02"]


async def test_a_batch_is_delivered_concurrently_the_owners_taking_turns() -> None:
    items = ["slow1", "slow2", "slow3", "fast1"]
    started: list[str] = []
    begun = {item: asyncio.Event() for item in items}
    held = asyncio.Event()

    async def deliver(item: str) -> str:
        started.append(item)
        begun[item].set()
        if item.startswith("slow"):
            await held.wait()  # never answers until released
        return item.upper()

    delivering = asyncio.create_task(deliver_batch(items, deliver, lambda i: i[:4], 2))
    await asyncio.wait_for(begun["slow2"].wait(), 30)
    # Two slots: the slow owner's first item, then the other owner's (not
    # queued behind the slow owner's), whose slot then went to slow2.
    assert started == ["slow1", "fast1", "slow2"]
    held.set()
    assert await delivering == ["SLOW1", "FAST1", "SLOW2", "SLOW3"]


async def test_every_item_is_attempted_before_a_failure_is_raised() -> None:
    attempted: list[int] = []

    async def deliver(item: int) -> int:
        attempted.append(item)
        if item == 1:
            raise RuntimeError("settling failed")
        return item

    with pytest.raises(RuntimeError):
        await deliver_batch([1, 2, 3], deliver, lambda i: i)
    assert sorted(attempted) == [1, 2, 3]


def test_the_claim_lease_covers_every_round_of_attempts() -> None:
    assert claim_lease(10.0, DELIVERY_CONCURRENCY) > timedelta(seconds=10)
    # A batch of three rounds: three deadlines, one after the other at worst.
    assert claim_lease(5.0, 3 * DELIVERY_CONCURRENCY) > timedelta(seconds=15)
    assert claim_lease(120.0, 1) > timedelta(seconds=120)
