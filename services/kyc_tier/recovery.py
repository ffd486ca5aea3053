"""What kyc-tier finishes after a crash, at start-up and then periodically:

- unfinished erasures are carried on (`ErasureFlow.resume_pending`);
- attempts still "started" long after any request could have run (the
  process died between recording the attempt and finishing it, e.g. after
  liveness consumed the challenge and the nonce) are finished as
  "interrupted", each with an audit entry;
- review items still pending for customers erased before erasures withdrew
  them are withdrawn (`ErasedReviews`);
- the erasure backlog (erasures requested, not completed) is measured into
  the queue metrics (`queue="erasures"`);
- NIKs hashed before the lookup hash was bound to the organisation are
  hashed again (`LegacyNikIndex`, migration 0370).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from identity_runtime import metrics
from identity_runtime.logs import get_logger
from identity_runtime.tasks import cancel_and_wait
from services.kyc_tier import models, withdrawals
from services.kyc_tier.flows import dukcapil, face, ktp, step_up
from services.kyc_tier.flows.attempts import interrupt_attempt
from services.kyc_tier.pii import PiiVault
from services.kyc_tier.ports import Clock
from services.kyc_tier.store import Store

log = get_logger("identity.kyc_tier.recovery")

# Each flow's audit action, by the kind its attempts record.
_ACTIONS = {
    step.kind: step.action
    for step in (ktp.STEP, face.LIVENESS, face.MATCH, step_up.STEP, dukcapil.STEP)
}


@dataclass
class StaleAttempts:
    """Finishes attempts left "started" by a process that died."""

    store: Store
    clock: Clock
    # Far beyond any request's deadline (a live request is never swept).
    older_than: timedelta = timedelta(minutes=5)

    async def sweep(self) -> int:
        return await self.store.write(self._sweep)

    def _sweep(self, session: Session) -> int:
        rows = list(
            session.scalars(
                select(models.Attempt)
                .where(
                    models.Attempt.outcome == "started",
                    models.Attempt.created_at < self.clock() - self.older_than,
                )
                .limit(500)
            )
        )
        for row in rows:
            action = _ACTIONS.get(row.kind, "attempt.finish")
            interrupt_attempt(session, action, row.org_id, row.customer_id, row.attempt_id)
        if rows:
            log.warning("attempts interrupted by a crash finished", count=len(rows))
        return len(rows)


@dataclass
class LegacyNikIndex:
    """Re-indexes the NIKs hashed without their organisation, a batch per
    transaction until none is left (then each pass finds none at once)."""

    store: Store
    vault: PiiVault
    batch_size: int = 200

    async def sweep(self) -> int:
        total = 0
        while done := await self.store.write(self._reindex_batch):
            total += done
            if done < self.batch_size:
                break
        if total:
            log.info("NIK lookup hashes bound to their organisation", count=total)
        return total

    def _reindex_batch(self, session: Session) -> int:
        rows = list(
            session.scalars(
                select(models.Customer)
                .where(
                    models.Customer.nik_hash.is_not(None),
                    models.Customer.nik_index_version.is_(None),
                )
                .limit(self.batch_size)
            )
        )
        for row in rows:
            self.vault.reindex_nik(session, row)
        return len(rows)


@dataclass
class ErasedReviews:
    """Withdraws the review items still pending for customers erased by a
    release before withdrawals existed (`withdrawals.py`): once each, audited."""

    store: Store
    clock: Clock

    async def sweep(self) -> int:
        return await self.store.write(self._sweep)

    def _sweep(self, session: Session) -> int:
        items, customers, erasures = models.ReviewItem, models.Customer, models.Erasure
        found = session.execute(
            select(items.org_id, items.customer_id, erasures.erasure_id)
            .join(customers, customers.customer_id == items.customer_id)
            .join(erasures, erasures.customer_id == items.customer_id)
            .where(items.status == "pending", customers.status == "erased")
            .distinct()
            .limit(100)
        ).all()
        closed = 0
        for org_id, customer_id, erasure_id in found:
            closed += withdrawals.withdraw_pending(
                session, org_id, customer_id, erasure_id, self.clock()
            )
            withdrawals.forget_notes(session, org_id, customer_id)
        if closed:
            log.info("review items of erased customers withdrawn", count=closed)
        return closed


@dataclass
class ErasureBacklog:
    """How many erasures wait to be completed, and for how long (seconds)."""

    store: Store
    clock: Clock
    queue: str = "erasures"

    async def measure(self) -> int:
        depth, oldest = await self.store.read(self._read)
        metrics.set_queue(self.queue, depth, oldest, self.clock())
        return depth

    @staticmethod
    def _read(session: Session) -> tuple[int, Any]:
        row = session.execute(
            select(
                func.count(models.Erasure.erasure_id), func.min(models.Erasure.requested_at)
            ).where(models.Erasure.state != "completed")
        ).one()
        return int(row[0]), row[1]


@dataclass
class RecoveryWorker:
    """Runs each pass once at start-up, then every `poll_seconds`."""

    passes: Sequence[Callable[[], Awaitable[int]]]
    poll_seconds: float = 30.0
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    # Set once the start-up passes have run (tests wait on it).
    first_pass: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="kyc-tier-recovery")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def run_once(self) -> None:
        for run in self.passes:
            try:
                await run()
            except Exception:  # noqa: BLE001 - the worker must outlive any single failure
                log.exception("recovery pass failed; retrying next interval")

    async def _run(self) -> None:
        while True:
            await self.run_once()
            self.first_pass.set()
            await asyncio.sleep(self.poll_seconds)
