"""The audit outbox: audit entries commit with the action they record.

An action and its audit entries are written in one transaction (so there is
no action without its entry and no entry for an action that rolled back);
the relay then appends them to the audit service, in order, at least once,
and marks them delivered. It is woken after each commit and also polls, so
entries written while the audit service was down go out when it is back.
Several kyc-tier replicas may relay at once: on PostgreSQL each claims rows
with FOR UPDATE SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from identity_runtime import context
from identity_runtime.audit_delivery import AuditSink as AuditSink
from identity_runtime.audit_delivery import BatchAuditSink as BatchAuditSink
from identity_runtime.audit_delivery import PendingEntry as PendingEntry
from identity_runtime.audit_delivery import deliver_batched, deliver_each
from identity_runtime.logs import get_logger
from identity_store.db import Database
from identity_store.types import utcnow
from services.kyc_tier import models
from services.kyc_tier.outbox_delivery import (
    DeliveryQueue,
    LeasedDelivery,
    queue_depth,
    skip_locked,
)

log = get_logger("identity.kyc_tier.outbox")

BATCH = 100
# The queue label of the outbox in the metrics.
QUEUE = "audit_outbox"


# What the audit service accepts (audit.v1.Outcome).
OUTCOMES = ("success", "denied", "failed")
_SUBJECT = re.compile(r"^[a-z][a-z0-9_]*:[A-Za-z0-9_.\-]{1,100}$")


def record(
    session: Session,
    org_id: str,
    action: str,
    subject: str,
    outcome: str,
    evidence_hashes: Mapping[str, str] | None = None,
    details: Mapping[str, Any] | None = None,
    actor: str = "",
) -> None:
    """Queue an audit entry in the caller's transaction. Ids and codes only.
    `actor` defaults to the call's (else kyc-tier itself)."""
    # The audit service refuses anything else for good: the entry would stay
    # in the outbox, never in the chain.
    if outcome not in OUTCOMES:
        raise ValueError(f"audit outcome must be one of {', '.join(OUTCOMES)}")
    if not _SUBJECT.match(subject):
        raise ValueError("audit subject must look like <kind>:<internal id>")
    session.add(
        models.AuditOutbox(
            org_id=org_id,
            request_id=context.request_id(),
            actor=actor or context.actor() or "service:kyc-tier",
            action=action,
            subject=subject,
            outcome=outcome,
            evidence_hashes=dict(evidence_hashes or {}),
            details={k: str(v) for k, v in (details or {}).items()},
        )
    )


RELAYED = DeliveryQueue(
    label=QUEUE,
    loop_name="audit-outbox-relay",
    failure_message="audit outbox relay failed; retrying",
    lease=timedelta(seconds=30),
)


class OutboxRelay(LeasedDelivery):
    """Appends the outbox's entries to the audit service: a pass every
    `poll_seconds`, or when `wake()` is called after a commit, at most every
    `gather_seconds` (the entries of commits close together - a capture's
    attempt and its decision, concurrent requests' - go in one pass: one
    claim, one AppendBatch, one settle)."""

    def __init__(
        self,
        database: Database,
        sink: AuditSink,
        poll_seconds: float = 1.0,
        gather_seconds: float = 0.0,
    ):
        super().__init__(RELAYED, log, poll_seconds, gather_seconds)
        self.database = database
        self.sink = sink

    def _claim(self, session: Session) -> list[PendingEntry]:
        """Lease a batch of pending entries (short transaction; delivery happens
        outside it, so no lock is held across network calls)."""
        now = utcnow()
        query = (
            select(models.AuditOutbox)
            .where(
                models.AuditOutbox.delivered_at.is_(None),
                models.AuditOutbox.rejected_reason.is_(None),
                or_(
                    models.AuditOutbox.claimed_until.is_(None),
                    models.AuditOutbox.claimed_until < now,
                ),
            )
            .order_by(models.AuditOutbox.id)
            .limit(BATCH)
        )
        rows = list(session.scalars(skip_locked(session, query)))
        for row in rows:
            row.claimed_until = now + self.lease
        return [
            PendingEntry(
                r.id,
                r.org_id,
                r.request_id,
                r.actor,
                r.action,
                r.subject,
                r.outcome,
                dict(r.evidence_hashes),
                dict(r.details),
            )
            for r in rows
        ]

    async def pending(self) -> tuple[int, Any]:
        return await self.database.run(
            lambda s: queue_depth(
                s,
                models.AuditOutbox.id,
                models.AuditOutbox.created_at,
                models.AuditOutbox.delivered_at.is_(None),
                models.AuditOutbox.rejected_reason.is_(None),
            )
        )

    async def flush(self) -> int:
        """Deliver pending entries in order until none is left or delivery fails.
        A batch shorter than BATCH was all there was to claim: entries
        committed since wake the relay again (`Store.write`), and the poll
        picks up the rest (another replica's expired leases)."""
        delivered = 0
        while True:
            batch = await self.database.run(self._claim)
            if not batch:
                return delivered
            if isinstance(self.sink, BatchAuditSink):
                done, rejected, failed = await deliver_batched(self.sink, batch)
            else:
                done, rejected, failed = await deliver_each(self.sink, batch)
            await self.database.run(
                functools.partial(
                    self._settle,
                    claimed=[entry.id for entry in batch],
                    done=done,
                    failed=failed,
                    rejected=rejected,
                )
            )
            delivered += len(done)
            if failed is not None or len(batch) < BATCH:
                return delivered

    @staticmethod
    def _settle(
        session: Session,
        claimed: list[int],
        done: list[int],
        failed: int | None,
        rejected: dict[int, str],
    ) -> None:
        now = utcnow()
        for entry_id, reason in rejected.items():
            session.execute(
                update(models.AuditOutbox)
                .where(models.AuditOutbox.id == entry_id)
                .values(rejected_reason=reason[:64])
            )
        if done:
            session.execute(
                update(models.AuditOutbox)
                .where(models.AuditOutbox.id.in_(done))
                .values(delivered_at=now)
            )
        # Release the rest of this batch's lease so the next pass retries in
        # order. Only this batch's: another relay (a replica, or a flush beside
        # the relay task) may be delivering rows it claimed, and releasing those
        # would let a third pass deliver them twice.
        undelivered = sorted(set(claimed) - set(done))
        if undelivered:
            session.execute(
                update(models.AuditOutbox)
                .where(models.AuditOutbox.id.in_(undelivered))
                .values(claimed_until=None)
            )
        if failed is not None:
            session.execute(
                update(models.AuditOutbox)
                .where(models.AuditOutbox.id == failed)
                .values(attempts=models.AuditOutbox.attempts + 1)
            )


async def wait_until_delivered(database: Database) -> None:
    """Until the outbox is empty; callers bound it with asyncio.timeout."""
    while True:
        pending = await database.run(
            lambda s: s.scalar(
                select(models.AuditOutbox.id)
                .where(
                    models.AuditOutbox.delivered_at.is_(None),
                    models.AuditOutbox.rejected_reason.is_(None),
                )
                .limit(1)
            )
        )
        if pending is None:
            return
        await asyncio.sleep(0.05)
