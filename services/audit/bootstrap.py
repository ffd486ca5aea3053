"""Builds the audit core from settings: the one place that chooses implementations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event

from identity_crypto.keyring import Keyring, load_keyring
from identity_store.bootstrap import DatabaseAndClockOverrides, StoredCore
from identity_store.db import Database
from identity_store.migrate import require_compatible
from identity_store.retention import PeriodicSweep
from services.audit.appender import GroupCommitAppender
from services.audit.checkpoints import CheckpointWriter, load_private_key
from services.audit.log import AuditLog
from services.audit.migrations import HISTORY
from services.audit.retention import AuditPurgeSweep
from services.audit.settings import AuditSettings
from services.audit.trail import AuditTrail
from services.audit.verifier import ChainVerifier


@dataclass(frozen=True)
class AuditOverrides(DatabaseAndClockOverrides):
    # The chain's HMAC keys (the primary signs new entries).
    keyring: Keyring | None = None


@dataclass(kw_only=True)
class AuditCore(StoredCore):
    trail: AuditTrail
    checkpoints: CheckpointWriter | None = None
    verifier: ChainVerifier | None = None

    async def stop_work(self) -> None:
        if self.verifier is not None:
            await self.verifier.stop()
        await self.trail.appender.close()
        if self.checkpoints is not None:
            await self.checkpoints.close()


def _sqlite_full_sync(dbapi_connection: Any, _record: Any) -> None:
    # The shared engine runs SQLite WAL with synchronous=NORMAL, which may lose
    # the last commits on power failure; an acknowledged audit entry must not.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def open_database(url: str, pool_size: int = 5) -> Database:
    database = Database(url, pool_size)
    if database.dialect == "sqlite":
        event.listen(database.engine, "connect", _sqlite_full_sync)
    return database


async def build(settings: AuditSettings, *, overrides: AuditOverrides | None = None) -> AuditCore:
    chosen = overrides or AuditOverrides()
    keyring = chosen.keyring or load_keyring(
        settings.hmac_keyring_file, settings.hmac_keyring, "audit HMAC keyring"
    )
    database = chosen.database or open_database(settings.database_url, settings.database_pool_size)
    await require_compatible(database, HISTORY, "audit")
    audit_log = AuditLog(keyring, clock=chosen.clock_or_utcnow())
    checkpoints = None
    if settings.checkpoint_file is not None and settings.checkpoint_key_file is not None:
        checkpoints = CheckpointWriter(
            settings.checkpoint_file,
            load_private_key(settings.checkpoint_key_file),
            settings.checkpoint_every_entries,
            settings.checkpoint_every_seconds,
        )
        checkpoints.start()
    appender = GroupCommitAppender(
        database,
        audit_log,
        settings.max_batch,
        committed=checkpoints.committed if checkpoints is not None else None,
        group_commit=settings.group_commit,
        max_wait=settings.group_commit_max_wait_seconds,
        writers=settings.group_commit_writers,
    )
    appender.start()
    retention = None
    if settings.retention_purge_interval_seconds > 0:
        purge = AuditPurgeSweep(database, audit_log, chosen.clock_or_utcnow())
        retention = PeriodicSweep(
            purge.sweep, settings.retention_purge_interval_seconds, "audit-retention"
        )
        retention.start()
    trail = AuditTrail(database, audit_log, appender)
    verifier = None
    if settings.verify_interval_seconds > 0:
        signer = checkpoints
        verifier = ChainVerifier(
            trail,
            settings.verify_interval_seconds,
            settings.verify_full_interval_seconds,
            signed_through=(lambda: signer.written_sequence) if signer is not None else None,
        )
        verifier.start()
    return AuditCore(
        database=database,
        trail=trail,
        checkpoints=checkpoints,
        retention=retention,
        verifier=verifier,
    )
