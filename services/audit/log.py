"""The audit log in the database: append, query, export, verify, checkpoint, purge.

Appends serialise on the chain head row (`audit_chain_head`, chain "main"):
SELECT ... FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite. Holding the
head while computing the next MAC is what makes the chain one gap-free line
across processes and replicas; the transaction commits the entries and the
new head together, so an acknowledged entry is durable and a failed one
leaves nothing behind.

Retention (7 years). Entries are never updated. A purge may only remove a
*prefix* of the chain whose entries are all older than the retention period,
and only after the whole chain verified intact; it first writes a signed
checkpoint holding the MAC of the last removed entry, and verification then
starts from that checkpoint. Nothing in the middle of the chain can be
removed, and a purge never rewrites an entry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from identity_crypto.keyring import Keyring
from identity_runtime.convert import same_named
from identity_runtime.errors import invalid_field
from identity_store.db import insert_missing
from identity_store.retention import period
from identity_store.types import utcnow
from services.audit import models, redaction
from services.audit.chain import (
    CHECKPOINT_INVALID,
    ENTRY_MISSING,
    Anchor,
    Draft,
    Entry,
    VerifyReport,
    checkpoint_message,
    compute_hmac,
    verify_entries,
)

CHAIN_ID = "main"
RETENTION = period("audit_log")  # 7 years, leap days included (the declared table)
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
BATCH = 1000

Transaction = Callable[[], AbstractContextManager[Session]]


def _entry(row: models.AuditEntry) -> Entry:
    return same_named(
        Entry,
        row,
        evidence_hashes=dict(row.evidence_hashes or {}),
        details=dict(row.details or {}),
        entry_key=row.entry_key or "",
        redaction_hmac=row.redaction_hmac or "",
        redaction_key_id=row.redaction_key_id or "",
    )


def _row(entry: Entry) -> dict[str, Any]:
    return {
        **entry.__dict__,
        "entry_key": entry.entry_key or None,
        "redaction_hmac": entry.redaction_hmac or None,
        "redaction_key_id": entry.redaction_key_id or None,
    }


@dataclass(frozen=True)
class QueryFilter:
    tenant_id: str
    subject: str = ""
    action: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None

    def fingerprint(self) -> str:
        text = json.dumps(
            [self.tenant_id, self.subject, self.action, str(self.start_time), str(self.end_time)],
            separators=(",", ":"),
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    sequence: int
    entry_hmac: str
    entry_recorded_at: datetime
    created_at: datetime
    kind: str
    key_id: str
    checkpoint_hmac: str


@dataclass(frozen=True)
class PurgeReport:
    purged: int
    checkpoint: Checkpoint | None


def encode_page_token(before_sequence: int, query: QueryFilter) -> str:
    raw = json.dumps(
        {"b": before_sequence, "f": query.fingerprint()}, separators=(",", ":")
    ).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, query: QueryFilter) -> int | None:
    if not token:
        return None
    # RecursionError: a token of deeply nested JSON arrays ([[[...]]]).
    try:
        document = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        before = int(document["b"])
        fingerprint = str(document["f"])
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError):
        raise invalid_field("page_token", "is not a token this service issued") from None
    if fingerprint != query.fingerprint() or before < 1:
        raise invalid_field("page_token", "belongs to a different query")
    return before


# Prebuilt: statement construction costs more CPU than the round trip here.
_LOCK_HEAD = (
    select(models.AuditChainHead.last_sequence, models.AuditChainHead.last_hmac)
    .where(models.AuditChainHead.chain_id == CHAIN_ID)
    .with_for_update()
)
_UPDATE_HEAD = (
    update(models.AuditChainHead)
    .where(models.AuditChainHead.chain_id == CHAIN_ID)
    .values(last_sequence=bindparam("last_sequence"), last_hmac=bindparam("last_hmac"))
)


class ChainBroken(Exception):
    """An operator action refused because the chain does not verify."""


class AuditLog:
    def __init__(
        self,
        keyring: Keyring,
        retention: timedelta = RETENTION,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.keyring = keyring
        self.retention = retention
        # The time entries are recorded at (replaceable for imports and tests).
        self.clock = clock

    # --- append ----------------------------------------------------------------

    @staticmethod
    def lock_head(session: Session) -> tuple[int, str]:
        """Lock the chain head row for this transaction; (last sequence, last MAC)."""
        head = session.execute(_LOCK_HEAD).first()
        if head is None:
            # Only if someone removed it (audit's baseline migration seeds it).
            insert_missing(
                session,
                models.AuditChainHead,
                "chain_id",
                chain_id=CHAIN_ID,
                last_sequence=0,
                last_hmac="",
            )
            head = session.execute(_LOCK_HEAD).first()
        assert head is not None
        return head.last_sequence, head.last_hmac

    def append(self, session: Session, drafts: list[Draft]) -> list[Entry]:
        """Chain and insert validated drafts in order, in the caller's transaction.

        One entry per draft, in order. A draft whose `entry_key` the chain
        already holds (or an earlier draft of this call holds) is not appended:
        its result is that entry. The head lock makes the check race-free
        across replicas."""
        last_sequence, last_hmac = self.lock_head(session)
        keyed = {d.entry_key for d in drafts if d.entry_key}
        known: dict[str, Entry] = {}
        if keyed:
            rows = session.scalars(
                select(models.AuditEntry).where(models.AuditEntry.entry_key.in_(sorted(keyed)))
            )
            known = {row.entry_key: _entry(row) for row in rows if row.entry_key}
        results: list[Entry] = []
        written: list[Entry] = []
        for draft in drafts:
            if draft.entry_key and draft.entry_key in known:
                results.append(known[draft.entry_key])
                continue
            entry = self._link(draft, last_sequence, last_hmac)
            written.append(entry)
            results.append(entry)
            if entry.entry_key:
                known[entry.entry_key] = entry
            last_sequence, last_hmac = entry.sequence, entry.entry_hmac
        if written:
            session.execute(insert(models.AuditEntry), [_row(e) for e in written])
            before = [
                redaction.redact_before(session, self.keyring, e, _entry)
                for e in redaction.erasures(written)
            ]
            late = redaction.redact_late(session, self.keyring, written, _entry)
            self._chain_more(session, [r for r in before if r is not None] + late, written[-1])
        return results

    def _link(self, draft: Draft, last_sequence: int, last_hmac: str) -> Entry:
        """`draft` as the entry after (last_sequence, last_hmac), MAC'd."""
        entry = same_named(
            Entry,
            draft,
            sequence=last_sequence + 1,
            entry_id=f"aud_{uuid.uuid4().hex}",
            # Microseconds are what the MAC covers and what both engines store.
            recorded_at=self.clock(),
            evidence_hashes=dict(draft.evidence_hashes),
            details=dict(draft.details),
            previous_hmac=last_hmac,
            entry_hmac="",
            key_id=self.keyring.primary_id,
        )
        return replace(entry, entry_hmac=compute_hmac(self.keyring.primary, entry))

    def _chain_more(self, session: Session, drafts: list[Draft], last: Entry) -> None:
        """Chain `drafts` after `last` (inserted) and move the head past them."""
        sequence, mac = last.sequence, last.entry_hmac
        more = []
        for draft in drafts:
            entry = self._link(draft, sequence, mac)
            more.append(entry)
            sequence, mac = entry.sequence, entry.entry_hmac
        if more:
            session.execute(insert(models.AuditEntry), [_row(e) for e in more])
        session.execute(_UPDATE_HEAD, {"last_sequence": sequence, "last_hmac": mac})

    def redact_erased(self, session: Session) -> int:
        """Redact the evidence hashes left about every customer the chain
        records as erased (erasures chained before redaction existed); how
        many `audit.evidence_redacted` entries that took. Idempotent."""
        last_sequence, last_hmac = self.lock_head(session)
        records = redaction.redact_erased(session, self.keyring, _entry)
        if records:
            last = session.get(models.AuditEntry, last_sequence)
            if last is None or last.entry_hmac != last_hmac:
                raise ChainBroken("the chain head names no entry; run `identity audit verify`")
            self._chain_more(session, records, _entry(last))
        return len(records)

    # --- query and export ----------------------------------------------------------

    def query(
        self, session: Session, query: QueryFilter, page_size: int, page_token: str
    ) -> tuple[list[Entry], str]:
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise invalid_field("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
        if query.start_time and query.end_time and query.start_time >= query.end_time:
            raise invalid_field("end_time", "must be after start_time")
        action = query.action
        if action and (len(action) > 64 or not all(c.isalnum() or c in "._" for c in action)):
            raise invalid_field("action", "must be an action name or a prefix ending in '.'")
        size = page_size or DEFAULT_PAGE_SIZE
        before = decode_page_token(page_token, query)
        table = models.AuditEntry
        statement = select(table).where(table.tenant_id == query.tenant_id)
        if query.subject:
            statement = statement.where(table.subject == query.subject)
        if action.endswith("."):
            statement = statement.where(table.action.startswith(action, autoescape=True))
        elif action:
            statement = statement.where(table.action == action)
        if query.start_time:
            statement = statement.where(table.recorded_at >= query.start_time)
        if query.end_time:
            statement = statement.where(table.recorded_at < query.end_time)
        if before is not None:
            statement = statement.where(table.sequence < before)
        rows = session.scalars(statement.order_by(table.sequence.desc()).limit(size + 1)).all()
        entries = [_entry(r) for r in rows[:size]]
        token = encode_page_token(entries[-1].sequence, query) if len(rows) > size else ""
        return entries, token

    @staticmethod
    def export_batch(
        session: Session, after: int, tenant_id: str | None = None, limit: int = BATCH
    ) -> list[Entry]:
        statement = select(models.AuditEntry).where(models.AuditEntry.sequence > after)
        if tenant_id is not None:
            statement = statement.where(models.AuditEntry.tenant_id == tenant_id)
        return [
            _entry(r)
            for r in session.scalars(statement.order_by(models.AuditEntry.sequence).limit(limit))
        ]

    @staticmethod
    def export(
        transaction: Transaction, from_sequence: int = 1, tenant_id: str | None = None
    ) -> Iterator[Entry]:
        """Entries in chain order, read in short keyset batches (needs no key)."""
        after = max(from_sequence, 1) - 1
        while True:
            with transaction() as session:
                batch = AuditLog.export_batch(session, after, tenant_id)
            if not batch:
                return
            yield from batch
            after = batch[-1].sequence

    # --- checkpoints -------------------------------------------------------------------

    def _sign_checkpoint(
        self,
        sequence: int,
        entry_hmac: str,
        entry_recorded_at: datetime,
        created_at: datetime,
        kind: str,
    ) -> Checkpoint:
        key_id = self.keyring.primary_id
        message = checkpoint_message(
            sequence, entry_hmac, entry_recorded_at, created_at, kind, key_id
        )
        mac = hmac.new(self.keyring.primary, message, hashlib.sha256).hexdigest()
        return Checkpoint(sequence, entry_hmac, entry_recorded_at, created_at, kind, key_id, mac)

    def checkpoint_valid(self, checkpoint: models.AuditCheckpoint | Checkpoint) -> bool:
        key = self.keyring.get(checkpoint.key_id)
        if key is None:
            return False
        message = checkpoint_message(
            checkpoint.sequence,
            checkpoint.entry_hmac,
            checkpoint.entry_recorded_at,
            checkpoint.created_at,
            checkpoint.kind,
            checkpoint.key_id,
        )
        return hmac.compare_digest(
            hmac.new(key, message, hashlib.sha256).hexdigest(), checkpoint.checkpoint_hmac
        )

    def _store_checkpoint(self, session: Session, checkpoint: Checkpoint) -> None:
        existing = session.get(models.AuditCheckpoint, checkpoint.sequence)
        if existing is not None:
            session.delete(existing)
            session.flush()
        session.add(models.AuditCheckpoint(**checkpoint.__dict__))

    def checkpoint(self, session: Session) -> Checkpoint | None:
        """Record the current head as a signed anchor (publish it outside the
        database to make truncation detectable)."""
        last_sequence, last_hmac = self.lock_head(session)
        if last_sequence == 0:
            return None
        entry = session.get(models.AuditEntry, last_sequence)
        if entry is None:
            raise ChainBroken("the chain head names a missing entry; run `identity audit verify`")
        checkpoint = self._sign_checkpoint(
            last_sequence, last_hmac, entry.recorded_at, utcnow(), "anchor"
        )
        self._store_checkpoint(session, checkpoint)
        return checkpoint

    # --- verification -----------------------------------------------------------------

    def verify(self, transaction: Transaction, from_sequence: int = 1) -> VerifyReport:
        with transaction() as session:
            # The head lock makes head, checkpoints and the oldest entry one snapshot.
            head = Anchor(*self.lock_head(session))
            checkpoints = session.scalars(select(models.AuditCheckpoint)).all()
            oldest = session.scalar(select(func.min(models.AuditEntry.sequence)))
            first_kept = oldest if oldest is not None else head.sequence + 1
            # Entries at or below a signed purge checkpoint are being (or were)
            # removed: a purge deletes in batches, so one in progress (or cut
            # short) leaves part of that prefix, and verification starts after it.
            purged_through = max((c.sequence for c in checkpoints if c.kind == "purge"), default=0)
            start = min(max(from_sequence, 1, first_kept, purged_through + 1), head.sequence + 1)
            before_start = session.get(models.AuditEntry, start - 1) if start > 1 else None
            anchor_hmac = before_start.entry_hmac if before_start is not None else ""
        for checkpoint in checkpoints:
            if not self.checkpoint_valid(checkpoint):
                return VerifyReport(False, 0, checkpoint.sequence, CHECKPOINT_INVALID)
        if start > 1 and before_start is None:
            # Nothing is kept below `start`: a purge checkpoint must anchor it;
            # otherwise entries were removed from the front of the chain.
            purge_point = next(
                (c for c in checkpoints if c.sequence == start - 1 and c.kind == "purge"), None
            )
            if purge_point is None:
                purged_through = max(
                    (c.sequence for c in checkpoints if c.kind == "purge" and c.sequence < start),
                    default=0,
                )
                first_missing = purged_through + 1 if start == first_kept else start - 1
                return VerifyReport(False, 0, first_missing, ENTRY_MISSING)
            anchor_hmac = purge_point.entry_hmac
        anchor = Anchor(start - 1, anchor_hmac)
        anchors = {c.sequence: c.entry_hmac for c in checkpoints if c.sequence >= start}

        def entries() -> Iterator[Entry]:
            for entry in self.export(transaction, start):
                if entry.sequence > head.sequence:
                    return
                yield entry

        report = verify_entries(entries(), self.keyring, anchor, head, anchors)
        if not report.intact:
            return report
        # Entries past the head the verification started from, in one statement
        # (appends commit entry and head together, so a legitimate one never is).
        with transaction() as session:
            current = select(models.AuditChainHead.last_sequence).where(
                models.AuditChainHead.chain_id == CHAIN_ID
            )
            stray = session.scalar(
                select(func.min(models.AuditEntry.sequence)).where(
                    models.AuditEntry.sequence > current.scalar_subquery()
                )
            )
        if stray is not None:
            return VerifyReport(
                False,
                report.entries_checked,
                stray,
                "ENTRY_INSERTED",
                report.from_sequence,
                report.last_sequence,
                report.last_hmac,
            )
        return report

    # --- retention ------------------------------------------------------------------------

    def purge(
        self,
        transaction: Transaction,
        before: datetime,
        now: datetime | None = None,
        batch: int = BATCH,
        held: Callable[[Session, datetime], int | None] | None = None,
    ) -> PurgeReport:
        """Remove the chain's prefix of entries recorded before `before`, which
        must be at least the retention period ago. Refuses on a broken chain.
        `held` names the first sequence a legal hold keeps (the prefix stops
        before it)."""
        now = now or utcnow()
        if before > now - self.retention:
            raise invalid_field(
                "before", "entries younger than the retention period cannot be purged"
            )
        report = self.verify(transaction)
        if not report.intact:
            raise ChainBroken(
                f"the chain does not verify ({report.problem} at {report.first_bad_sequence}); "
                "purging would destroy the evidence"
            )
        with transaction() as session:
            last_sequence, _ = self.lock_head(session)
            first_young = session.scalar(
                select(func.min(models.AuditEntry.sequence)).where(
                    models.AuditEntry.recorded_at >= before
                )
            )
            last_purged = (first_young - 1) if first_young is not None else last_sequence
            first_held = held(session, before) if held is not None else None
            if first_held is not None:
                last_purged = min(last_purged, first_held - 1)
            oldest = session.scalar(select(func.min(models.AuditEntry.sequence)))
            if oldest is None or last_purged < oldest:
                return PurgeReport(0, None)
            entry = session.get(models.AuditEntry, last_purged)
            if entry is None:
                # Another purge (a replica, the CronJob) deleted it after our
                # reads above: it holds the checkpoint, nothing is left to do.
                return PurgeReport(0, None)
            checkpoint = self._sign_checkpoint(
                last_purged, entry.entry_hmac, entry.recorded_at, now, "purge"
            )
            self._store_checkpoint(session, checkpoint)
        purged = 0
        while True:
            with transaction() as session:
                upper = (
                    session.scalar(
                        select(models.AuditEntry.sequence)
                        .where(models.AuditEntry.sequence <= last_purged)
                        .order_by(models.AuditEntry.sequence)
                        .offset(batch - 1)
                        .limit(1)
                    )
                    or last_purged
                )
                result = session.execute(
                    delete(models.AuditEntry).where(
                        models.AuditEntry.sequence <= min(upper, last_purged)
                    )
                )
                # A DELETE answers with a CursorResult, which has the row count.
                removed = cast("CursorResult[Any]", result).rowcount or 0
            purged += removed
            if removed == 0 or upper >= last_purged:
                break
        return PurgeReport(purged, checkpoint)
