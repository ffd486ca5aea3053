"""kyc-tier's retention sweep over its own tables (the periods are the one
declared table in libs/identity_store/retention.py):

- sealed capture frames: onboarding ones 3 years, step-up ones 90 days after
  capture; those of an erased customer (their key already shredded) at once;
- verification rows 7 years after they were made (their review items and any
  frames left with them go first);
- console sessions once expired or signed out, WebAuthn ceremony challenges
  once expired, password sign-in throttle rows once forgotten (their
  `expires_at`);
- `Idempotency-Key` records once past their 24 h (not a regulated record: no
  audit entry for them);
- audit outbox rows a day after the audit chain acknowledged them (the chain
  is the record; the outbox's copy would otherwise outlive it), counted in
  the log only: an audit entry of the count would be a new row to sweep.

An organisation may lengthen a period (retention_overrides.py, never
shorter than declared). A customer under legal hold keeps everything. Rows
go in bounded batches, one short transaction each (safe with several
replicas sweeping at once); each run ends with one audit entry per
organisation touched, with counts per data class only. Reads of frames
refuse a bundle past its period even before the sweep reaches it
(`readable`).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session, object_session

from identity_runtime.logs import get_logger
from identity_store.db import Database
from identity_store.retention import delete_in_batches, period
from services.kyc_tier import idempotency, models, outbox
from services.kyc_tier import retention_overrides as overrides
from services.kyc_tier.console_models import (
    ConsoleChallenge,
    ConsoleLoginThrottle,
    ConsoleSession,
)
from services.kyc_tier.outbox import OutboxRelay
from services.kyc_tier.ports import Clock

log = get_logger("identity.kyc_tier.retention")

# A bundle's retention class -> its data class in the declared table.
FRAME_CLASSES = {"onboarding": "onboarding_frames", "step_up": "step_up_frames"}


def _not_held(customer_id: Any) -> ColumnElement[bool]:
    return ~exists().where(
        models.Customer.customer_id == customer_id,
        models.Customer.legal_hold_since.is_not(None),
    )


def readable(bundle: models.CaptureBundle, now: datetime) -> bool:
    """Whether a sealed bundle is still within its period (reads refuse it
    otherwise): the declared one, or the organisation's longer override (read
    in the bundle's own session)."""
    created = bundle.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=now.tzinfo)
    name = FRAME_CLASSES[bundle.retention_class]
    session = object_session(bundle)
    kept = period(name) if session is None else overrides.periods(session, bundle.org_id)[name]
    return now < created + kept


def _frames_due(org_id: str, retention: str, cutoff: datetime) -> ColumnElement[bool]:
    bundle = models.CaptureBundle
    return and_(
        bundle.org_id == org_id,
        bundle.retention_class == retention,
        bundle.created_at <= cutoff,
        _not_held(bundle.customer_id),
    )


@dataclass
class KycSweeper:
    database: Database
    clock: Clock
    batch: int = 1000
    timer: Callable[[], float] = time.perf_counter
    longest_batch_seconds: float = field(default=0.0, init=False)
    # Counts of the last run that belong to no organisation.
    platform_counts: dict[str, int] = field(default_factory=dict, init=False)

    def sweep(self) -> dict[str, dict[str, int]]:
        """One pass; per organisation, counts per data class."""
        now = self.clock()
        self.longest_batch_seconds = 0.0
        with self.database.transaction() as session:
            orgs = list(session.scalars(select(models.Org.org_id).order_by(models.Org.org_id)))
        with self.database.transaction() as session:
            expired_keys = idempotency.prune(session, now)
        summary: dict[str, dict[str, int]] = {}
        for org_id in orgs:
            counts = self._sweep_org(org_id, now)
            if any(counts.values()):
                summary[org_id] = counts
                with self.database.transaction() as session:
                    outbox.record(
                        session,
                        org_id,
                        "retention.sweep",
                        f"org:{org_id}",
                        "success",
                        details=counts,
                        actor="service:kyc-tier",
                    )
        # WebAuthn ceremony challenges and sign-in throttle rows (keyed by an
        # email digest, known or not) belong to no organisation: counted in the log.
        challenge, throttle = ConsoleChallenge, ConsoleLoginThrottle
        self.platform_counts = {
            "webauthn_challenges": self._run(
                challenge.ceremony_id, lambda: challenge.expires_at <= now
            ),
            "console_login_throttles": self._run(
                throttle.email_digest, lambda: throttle.expires_at <= now
            ),
            "relayed_audit_outbox": self._run(
                models.AuditOutbox.id,
                functools.partial(_relayed, now - period("relayed_audit_outbox")),
            ),
        }
        log.info(
            "retention sweep",
            organisations=len(summary),
            expired_keys=expired_keys,
            **self.platform_counts,
        )
        return summary

    def _run(self, key: Any, where: Callable[[], ColumnElement[bool]], **kw: Any) -> int:
        stats = delete_in_batches(self.database, key, where, self.batch, self.timer, **kw)
        self.longest_batch_seconds = max(self.longest_batch_seconds, stats.longest_batch_seconds)
        return stats.rows

    def _sweep_org(self, org_id: str, now: datetime) -> dict[str, int]:
        bundle = models.CaptureBundle
        counts: dict[str, int] = {}
        # The declared periods, or the organisation's longer overrides.
        with self.database.transaction() as session:
            periods = overrides.periods(session, org_id)
        for retention, name in FRAME_CLASSES.items():
            cutoff = now - periods[name]
            counts[name] = self._run(
                bundle.bundle_id, functools.partial(_frames_due, org_id, retention, cutoff)
            )
        counts["erased_frames"] = self._run(
            bundle.bundle_id,
            lambda: and_(
                bundle.org_id == org_id,
                exists().where(
                    models.Customer.customer_id == bundle.customer_id,
                    models.Customer.status == "erased",
                ),
            ),
        )
        verification = models.Verification
        cutoff = now - periods["verifications"]
        counts["verifications"] = self._run(
            verification.verification_id,
            lambda: and_(
                verification.org_id == org_id,
                verification.created_at <= cutoff,
                _not_held(verification.customer_id),
            ),
            before_delete=_dependents_first,
        )
        session_row = ConsoleSession
        counts["console_sessions"] = self._run(
            session_row.session_id,
            lambda: and_(
                session_row.org_id == org_id,
                or_(session_row.expires_at <= now, session_row.revoked_at <= now),
            ),
        )
        return counts


def _relayed(cutoff: datetime) -> ColumnElement[bool]:
    """Outbox rows the audit chain acknowledged before `cutoff`, but never the
    newest row: the relay keys an entry by its outbox id
    (`kyc-tier:outbox:<id>`) and SQLite gives a deleted highest id again,
    which the chain would take for an entry it already holds."""
    row = models.AuditOutbox
    newest = select(func.max(row.id)).scalar_subquery()
    return and_(row.delivered_at.is_not(None), row.delivered_at <= cutoff, row.id < newest)


def _dependents_first(session: Session, verification_ids: list[Any]) -> None:
    for table in (models.ReviewItem, models.CaptureBundle):
        session.execute(delete(table).where(table.verification_id.in_(verification_ids)))


def retention_pass(sweeper: KycSweeper, relay: OutboxRelay) -> Callable[[], Awaitable[int]]:
    """The sweep as a periodic pass (RecoveryWorker): off the event loop, then
    the relay is woken for the summary entries."""

    async def run() -> int:
        summary = await asyncio.to_thread(sweeper.sweep)
        if summary:
            relay.wake()
        return sum(sum(counts.values()) for counts in summary.values())

    return run
