"""What the audit relay and the webhook dispatcher share.

Both deliver rows written in the caller's transaction: a background loop
claims a batch under a lease (so a crashed replica's claim runs out), delivers
it outside the transaction, and reports the queue's depth to the metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVarTuple

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from structlog.typing import FilteringBoundLogger

from identity_runtime import metrics
from identity_runtime.tasks import WakeableLoop
from identity_store.types import utcnow

Row = TypeVarTuple("Row")


def skip_locked(session: Session, query: Select[*Row]) -> Select[*Row]:
    """On PostgreSQL, lock the claimed rows and skip those another replica
    holds (SQLite has a single writer: nothing to skip)."""
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def queue_depth(
    session: Session,
    key: InstrumentedAttribute[Any],
    created_at: InstrumentedAttribute[Any],
    *pending: ColumnElement[bool],
) -> tuple[int, Any]:
    """How many rows are `pending`, and the creation time of the oldest."""
    row = session.execute(select(func.count(key), func.min(created_at)).where(*pending)).one()
    return int(row[0]), row[1]


@dataclass(frozen=True)
class DeliveryQueue:
    """What names one leased queue and how its rows are claimed."""

    # The queue's label in the metrics.
    label: str
    # The background task's name.
    loop_name: str
    # Logged when a pass fails (the loop goes on).
    failure_message: str
    # How long a claim holds: a crashed replica's rows are claimed again after it.
    lease: timedelta


class LeasedDelivery(WakeableLoop):
    """A pass delivers what is due (`deliver_due`: `flush`, or starting
    attempts that end on their own), then measures the queue
    (`measure`) when `poll_seconds` have passed since it last did (a woken
    pass after every commit would otherwise count the queue after every
    commit; the gauges are at most one poll behind); rows are claimed for the
    queue's lease."""

    def __init__(
        self,
        queue: DeliveryQueue,
        logger: FilteringBoundLogger,
        poll_seconds: float,
        gather_seconds: float = 0.0,
    ):
        super().__init__(
            name=queue.loop_name,
            poll_seconds=poll_seconds,
            logger=logger,
            failure_message=queue.failure_message,
            gather_seconds=gather_seconds,
        )
        self.queue = queue.label
        self.lease = queue.lease
        self._next_measure = 0.0

    async def run_pass(self) -> None:
        await self.deliver_due()
        now = time.monotonic()
        if now >= self._next_measure:
            self._next_measure = now + self.poll_seconds
            await self.measure()

    async def deliver_due(self) -> None:
        """A pass's delivery of what is due: by default `flush`."""
        await self.flush()

    async def flush(self) -> int:
        raise NotImplementedError

    async def pending(self) -> tuple[int, Any]:
        """The queue's depth and its oldest row's creation time."""
        raise NotImplementedError

    async def measure(self) -> tuple[int, float]:
        """The queue's depth and the age of its oldest pending row (seconds),
        into the queue metrics; returned for tests."""
        depth, oldest = await self.pending()
        return depth, metrics.set_queue(self.queue, depth, oldest, utcnow())
