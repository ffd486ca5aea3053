"""Delivering a claimed batch of outbound posts (kyc-tier's webhooks,
face-match's callbacks).

Each attempt ends by its poster's overall deadline (`egress.GuardedPoster`:
the whole exchange, whatever the receiver does). A batch is delivered with
bounded concurrency (`DELIVERY_CONCURRENCY` attempts at once), the
organisations taking turns for the slots, so one organisation's slow or
hostile receiver holds a slot for at most one deadline per attempt and never
queues another organisation's delivery behind it. Neither service promises
an order between deliveries (docs/webhooks.md, docs/face-match.md).

A claim is fair between organisations (`claim_window`, `fair_share`): it
locks a window of several batches' worth of due rows, in due order, and takes
up to a batch of them round robin by organisation (each organisation's own
rows in due order), so one organisation's backlog cannot fill whole batches
while another's row is due; the rest of the window stays due, untouched.

A claim hides its rows for `claim_lease`: longer than the worst case of the
batch (its attempts' deadlines, one round per `DELIVERY_CONCURRENCY` rows),
so another process never claims an attempt still in flight.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Hashable, Sequence
from datetime import timedelta
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Attempts of one batch in flight at once (per delivering process).
DELIVERY_CONCURRENCY = 16
# What a claim holds beyond its attempts' deadlines: settling each attempt in
# the database, and a paused process.
LEASE_MARGIN = timedelta(seconds=60)
# Batches' worth of due rows one claim looks at to share a batch fairly.
CLAIM_WINDOW_BATCHES = 4


def claim_lease(
    timeout_seconds: float, batch: int, concurrency: int = DELIVERY_CONCURRENCY
) -> timedelta:
    """How long a claim of up to `batch` rows, each attempt ending after at
    most `timeout_seconds`, is hidden from other processes."""
    rounds = math.ceil(batch / concurrency)
    return timedelta(seconds=rounds * timeout_seconds) + LEASE_MARGIN


def taking_turns(items: Sequence[T], owner: Callable[[T], Hashable]) -> list[T]:
    """`items` with their owners taking turns (round robin, each owner's own
    items in their order): A1 A2 A3 B1 -> A1 B1 A2 A3."""
    queues: dict[Hashable, list[T]] = {}
    for item in items:
        queues.setdefault(owner(item), []).append(item)
    ordered: list[T] = []
    for turn in range(max((len(q) for q in queues.values()), default=0)):
        ordered.extend(q[turn] for q in queues.values() if turn < len(q))
    return ordered


def claim_window(batch: int) -> int:
    """How many due rows (the oldest due first) a claim of up to `batch`
    rows reads and locks to choose from."""
    return batch * CLAIM_WINDOW_BATCHES


def fair_share(window: Sequence[T], owner: Callable[[T], Hashable], batch: int) -> list[T]:
    """Up to `batch` rows of the `window` (in due order), the owners taking
    turns: one owner's backlog leaves room for every other owner's due rows."""
    return taking_turns(window, owner)[:batch]


async def deliver_batch(
    items: Sequence[T],
    deliver: Callable[[T], Awaitable[R]],
    owner: Callable[[T], Hashable],
    concurrency: int = DELIVERY_CONCURRENCY,
) -> list[R]:
    """`deliver` every item, at most `concurrency` at once, the owners taking
    turns for the slots; the results (in turn order). Every item is attempted
    even if one fails; then the first failure is raised (its rows come back
    when the claim's lease ends)."""
    slots = asyncio.Semaphore(concurrency)

    async def one(item: T) -> R:
        async with slots:  # FIFO: the slots go in turn order
            return await deliver(item)

    outcomes = await asyncio.gather(
        *(one(item) for item in taking_turns(items, owner)), return_exceptions=True
    )
    results: list[R] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        results.append(outcome)
    return results
