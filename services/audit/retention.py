"""The audit log's scheduled purge under its 7-year rule (the declared
table, identity_store.retention): the chain's prefix older than the period
goes, after the whole chain verified, behind a signed purge checkpoint
(AuditLog.purge), and never past an entry a legal hold keeps (holds.py).
Runs in the audit service every AUDIT_RETENTION_PURGE_INTERVAL_SECONDS and
from `identity retention sweep --service audit` (a CronJob); two purges at
once serialise on the chain head, and the second finds nothing left."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from identity_runtime.logs import get_logger
from identity_store.db import Database
from services.audit import holds, models
from services.audit.log import AuditLog

log = get_logger("identity.audit.retention")


def as_utc(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@dataclass
class AuditPurgeSweep:
    database: Database
    audit_log: AuditLog
    clock: Callable[[], datetime]
    batch: int = 1000

    def sweep(self) -> dict[str, int]:
        """One pass; the count of entries purged (and the checkpoint's sequence)."""
        now = self.clock()
        before = now - self.audit_log.retention
        with self.database.transaction() as session:
            oldest = session.scalar(select(func.min(models.AuditEntry.recorded_at)))
        if oldest is None or as_utc(oldest) >= before:
            # Nothing is old enough: no need to verify the whole chain.
            return {"audit_log": 0, "purge_checkpoint": 0}
        report = self.audit_log.purge(
            self.database.transaction,
            before,
            now=now,
            batch=self.batch,
            held=holds.first_held,
        )
        counts = {
            "audit_log": report.purged,
            "purge_checkpoint": report.checkpoint.sequence if report.checkpoint else 0,
        }
        log.info("retention sweep", **counts)
        return counts
