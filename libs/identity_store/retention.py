"""Retention: the one declared table of data classes and their periods, and
the bounded-batch delete every service's sweeper uses on its own tables.

Periods are the product brief's (seed 001): onboarding capture frames 3 years
(OJK), step-up frames 90 days, verification rows and the audit log 7 years.
Challenges and nonces are kept until their own expiry (their services'
settings), then purged. The sweepers, the docs and the tests read this table;
nothing else states a period.

A sweep deletes in batches of at most `batch` rows, one short transaction per
batch, so a backlog of millions of rows never holds a long lock. On
PostgreSQL each batch claims its rows with FOR UPDATE SKIP LOCKED, so several
replicas sweeping at once delete each row once; on SQLite writers are
serialised. Deleting an already-deleted row is a no-op: a sweep is idempotent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, delete, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from identity_runtime.logs import get_logger
from identity_runtime.tasks import cancel_and_wait
from identity_store.db import Database

_log = get_logger("identity.store.retention")

DAY = timedelta(days=1)
# Seven calendar years, leap days included (a regulated record is never cut short).
SEVEN_YEARS = 7 * 365 * DAY + 2 * DAY


@dataclass(frozen=True)
class DataClass:
    """A class of data, the service that owns it, and how long it is kept."""

    name: str
    owner: str
    # None: kept until its own expiry (a setting of the owner), then purged.
    period: timedelta | None
    basis: str


RETENTION: dict[str, DataClass] = {
    c.name: c
    for c in (
        DataClass("onboarding_frames", "kyc-tier", 3 * 365 * DAY, "OJK: 3 years"),
        DataClass("step_up_frames", "kyc-tier", 90 * DAY, "product brief: 90 days"),
        DataClass("erased_frames", "kyc-tier", timedelta(0), "UU PDP erasure: key shredded"),
        DataClass("verifications", "kyc-tier", SEVEN_YEARS, "regulated record: 7 years"),
        DataClass(
            "erased_enrollments",
            "matching",
            SEVEN_YEARS,
            "retired (template shredded) on erasure; row kept for the regulated 7 years",
        ),
        DataClass(
            "audit_log",
            "audit",
            SEVEN_YEARS,
            "regulated record: 7 years (a prefix of the chain, after a purge checkpoint)",
        ),
        DataClass("challenges", "liveness", None, "until expiry (LIVENESS_CHALLENGE_TTL_SECONDS)"),
        DataClass("nonces", "liveness", None, "until expiry (LIVENESS_NONCE_RETENTION_HOURS)"),
        DataClass("console_sessions", "kyc-tier", None, "until expiry or sign-out"),
        DataClass("webauthn_challenges", "kyc-tier", None, "until expiry (single use)"),
        DataClass(
            "console_login_throttles",
            "kyc-tier",
            None,
            "until forgotten: the lockout window after the last failed sign-in",
        ),
        DataClass(
            "relayed_audit_outbox",
            "kyc-tier",
            DAY,
            "a day after the audit chain acknowledged it (the chain is the record)",
        ),
    )
}


def period(name: str) -> timedelta:
    """The period of a data class that has one (KeyError otherwise)."""
    found = RETENTION[name].period
    if found is None:
        raise KeyError(f"{name} is kept until its own expiry, not for a period")
    return found


@dataclass(frozen=True)
class BatchStats:
    rows: int
    batches: int
    # The longest single batch transaction (seconds): the longest lock held.
    longest_batch_seconds: float


def delete_in_batches(
    database: Database,
    key: InstrumentedAttribute[Any],
    where: Callable[[], ColumnElement[bool]],
    batch: int,
    timer: Callable[[], float],
    before_delete: Callable[[Session, list[Any]], None] | None = None,
) -> BatchStats:
    """Delete the rows of `key`'s table matching `where()`, `batch` at a time,
    one transaction per batch, until none is left. `before_delete` runs in
    the batch's transaction with the claimed keys (dependent rows first)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    table = key.class_
    rows = batches = 0
    longest = 0.0
    while True:
        started = timer()
        with database.transaction() as session:
            claim = select(key).where(where()).limit(batch)
            if database.dialect == "postgresql":
                claim = claim.with_for_update(skip_locked=True)
            keys = list(session.scalars(claim))
            if keys:
                if before_delete is not None:
                    before_delete(session, keys)
                # The condition again: a key column need not be unique on its own.
                result = session.execute(delete(table).where(where(), key.in_(keys)))
                rows += int(cast("CursorResult[Any]", result).rowcount)
        longest = max(longest, timer() - started)
        if not keys:
            return BatchStats(rows, batches, longest)
        batches += 1


@dataclass
class PeriodicSweep:
    """Runs a (blocking) sweep off the event loop at start-up, then every
    `seconds`; a failed run is logged and retried next interval."""

    sweep: Callable[[], object]
    seconds: float
    name: str
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.sweep)
            except Exception:  # noqa: BLE001 - the sweep must outlive any single failure
                _log.exception("retention sweep failed; retrying next interval", sweep=self.name)
            await asyncio.sleep(self.seconds)
