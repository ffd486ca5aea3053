"""Delivering outbound posts (kyc-tier's webhooks, face-match's callbacks)
through a pool of slots.

A delivering process keeps up to `DELIVERY_CONCURRENCY` attempts in flight
(`DeliveryPool`). Whenever a slot frees (an attempt has settled), the poll
interval passes, or the relay is woken, it claims up to the number of free
slots and starts those attempts at once: a delivery that falls due while
other attempts are in flight waits for one slot, not for the slowest attempt
of a batch. Each attempt ends by its poster's overall deadline
(`egress.GuardedPoster`: the whole exchange, whatever the receiver does), so
one organisation's slow or hostile receiver holds one slot for at most one
deadline per attempt. Neither service promises an order between deliveries
(docs/webhooks.md, docs/face-match.md).

A claim is fair between organisations (`fair_share`): it locks a window of
the oldest due rows (each relay's `CLAIM_WINDOW`), in due order, and takes as many as
there are free slots with the organisations taking turns, an organisation's
attempts already in flight counting as turns it has had: an organisation
holding slots does not take a freed one while another organisation has a due
row in the window, and one organisation's backlog cannot fill the slots while
another's row is due. The rest of the window stays due, untouched.

A claim hides its rows for `claim_lease`: every claimed row is attempted at
once, so one attempt's deadline plus a margin, and another process never
claims an attempt still in flight. Stopping a pool (`close`) cancels the
attempts in flight; their rows stay claimed until the lease ends, then any
process claims them again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from datetime import timedelta
from typing import Generic, TypeVar

from structlog.typing import FilteringBoundLogger

T = TypeVar("T")
R = TypeVar("R")

# Attempts in flight at once (per delivering process).
DELIVERY_CONCURRENCY = 16
# What a claim holds beyond its attempt's deadline: settling the attempt in
# the database, and a paused process.
LEASE_MARGIN = timedelta(seconds=60)

# A relay's claim: (free slots, attempts in flight per owner) -> the claimed
# items, at most that many.
Claim = Callable[[int, Mapping[Hashable, int]], Awaitable[Sequence[T]]]


def claim_lease(timeout_seconds: float) -> timedelta:
    """How long a claimed row, attempted at once and ending after at most
    `timeout_seconds`, is hidden from other processes."""
    return timedelta(seconds=timeout_seconds) + LEASE_MARGIN


def taking_turns(
    items: Sequence[T],
    owner: Callable[[T], Hashable],
    had: Mapping[Hashable, int] | None = None,
) -> list[T]:
    """`items` with their owners taking turns (round robin, each owner's own
    items in their order): A1 A2 A3 B1 -> A1 B1 A2 A3. An owner with `had`
    turns already (attempts in flight) comes in after the owners with fewer:
    with A having had two, A1 A2 B1 -> B1 A1 A2."""
    had = had or {}
    queues: dict[Hashable, list[T]] = {}
    for item in items:
        queues.setdefault(owner(item), []).append(item)
    # (turn, the owner's place among the owners, item); stable by due order.
    turns = [
        (had.get(key, 0) + n, place, item)
        for place, (key, queue) in enumerate(queues.items())
        for n, item in enumerate(queue)
    ]
    turns.sort(key=lambda turn: (turn[0], turn[1]))
    return [item for _, _, item in turns]


def fair_share(
    window: Sequence[T],
    owner: Callable[[T], Hashable],
    room: int,
    busy: Mapping[Hashable, int] | None = None,
) -> list[T]:
    """Up to `room` rows of the `window` (in due order), the owners taking
    turns, each owner's attempts in flight (`busy`) counting as turns it has
    had: one owner's backlog or slots leave room for every other owner's due
    rows."""
    return taking_turns(window, owner, busy)[: max(room, 0)]


class DeliveryPool(Generic[T]):
    """Up to `concurrency` attempts of one delivering process in flight.

    `fill` claims up to the free slots (the relay's `claim`, told how many
    slots are free and how many attempts each owner has in flight) and
    starts an attempt (`deliver`, which posts and settles) for each claimed
    item. When an attempt ends, its slot is free again and `on_free` is
    called (the relay's wake-up), so the relay claims again at once. An
    attempt that fails (its settling raised) is logged by its error's type
    (never its message: it may quote a row); its row comes back when the
    lease ends."""

    def __init__(
        self,
        owner: Callable[[T], Hashable],
        logger: FilteringBoundLogger,
        concurrency: int = DELIVERY_CONCURRENCY,
        on_free: Callable[[], None] | None = None,
    ) -> None:
        self.concurrency = concurrency
        self.on_free = on_free
        self._owner = owner
        self._log = logger
        self._attempts: dict[asyncio.Task[object], Hashable] = {}
        self._claiming = asyncio.Lock()
        self._freed = asyncio.Event()

    @property
    def free(self) -> int:
        """Slots free for new attempts."""
        return self.concurrency - len(self._attempts)

    def busy(self) -> Counter[Hashable]:
        """The attempts in flight, per owner."""
        return Counter(self._attempts.values())

    async def fill(
        self, claim: Claim[T], deliver: Callable[[T], Awaitable[R]]
    ) -> list[asyncio.Task[R]]:
        """Claim up to the free slots and start their attempts; the attempts
        started (in the order they took the slots)."""
        async with self._claiming:  # one claim at a time: the slots are counted once
            room = self.free
            if room <= 0:
                return []
            claimed = await claim(room, self.busy())
            return [self._start(item, deliver) for item in claimed[:room]]

    async def wait_freed(self, poll_seconds: float, stop: asyncio.Event) -> None:
        """Until a slot frees (since the last wait), `stop` is set or
        `poll_seconds` have passed."""
        waits = [asyncio.ensure_future(self._freed.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, timeout=poll_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        self._freed.clear()

    async def drain(self) -> None:
        """Wait until the attempts in flight now have ended."""
        await asyncio.gather(*list(self._attempts), return_exceptions=True)

    async def close(self) -> None:
        """Cancel the attempts in flight and wait until they have ended
        (their rows come back when the lease ends)."""
        attempts = list(self._attempts)
        for attempt in attempts:
            attempt.cancel()
        await asyncio.gather(*attempts, return_exceptions=True)

    def _start(self, item: T, deliver: Callable[[T], Awaitable[R]]) -> asyncio.Task[R]:
        attempt: asyncio.Task[R] = asyncio.ensure_future(deliver(item))
        self._attempts[attempt] = self._owner(item)
        attempt.add_done_callback(self._ended)
        return attempt

    def _ended(self, attempt: asyncio.Task[object]) -> None:
        self._attempts.pop(attempt, None)
        if not attempt.cancelled() and (error := attempt.exception()) is not None:
            self._log.warning("delivery attempt failed", error=type(error).__name__)
        self._freed.set()
        if self.on_free is not None:
            self.on_free()


async def settled(attempts: Sequence[asyncio.Task[R]]) -> list[R]:
    """Wait for every one of `attempts`; their results (in their order). The
    first failure is raised once all have ended."""
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    results: list[R] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        results.append(outcome)
    return results
