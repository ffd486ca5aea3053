"""How the audit outbox relay hands claimed entries to its sink: one call per
entry, or one AppendBatch per run of one organisation's entries (the sink
decides by having `deliver_batch`). Each returns what to settle: the outbox
ids delivered, those refused for good (with the reason), and the first id a
later pass must retry (None when the whole batch was handled)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from identity_runtime import metrics
from identity_runtime.errors import DomainError
from identity_runtime.logs import get_logger

log = get_logger("identity.kyc_tier.outbox")

# Refusals that retrying cannot fix.
_PERMANENT = frozenset(
    {"INVALID_ARGUMENT", "FAILED_PRECONDITION", "PERMISSION_DENIED", "UNAUTHENTICATED"}
)


@dataclass(frozen=True)
class PendingEntry:
    id: int
    org_id: str
    request_id: str
    actor: str
    action: str
    subject: str
    outcome: str
    evidence_hashes: dict[str, str]
    details: dict[str, str]


class AuditSink(Protocol):
    """Where the relay delivers; the gRPC implementation lives in adapters."""

    async def deliver(self, entry: PendingEntry) -> None: ...


@runtime_checkable
class BatchAuditSink(AuditSink, Protocol):
    """A sink that also takes several entries of one organisation in one call.

    `deliver_batch` appends them in order; it answers one result per entry:
    None (appended) or the reason the audit service refused that entry for
    good (nothing of it was written; the others were). A failure of the
    whole call raises a DomainError, and then none of them was written."""

    async def deliver_batch(self, entries: list[PendingEntry]) -> list[str | None]: ...


def _runs(batch: list[PendingEntry]) -> list[list[PendingEntry]]:
    """Consecutive entries of one organisation (one batch call each), in order."""
    runs: list[list[PendingEntry]] = []
    for entry in batch:
        if runs and runs[-1][0].org_id == entry.org_id:
            runs[-1].append(entry)
        else:
            runs.append([entry])
    return runs


async def deliver_each(
    sink: AuditSink, batch: list[PendingEntry]
) -> tuple[list[int], dict[int, str], int | None]:
    """One call per entry, in order, stopping at the first that may succeed later."""
    done: list[int] = []
    rejected: dict[int, str] = {}
    for entry in batch:
        try:
            await sink.deliver(entry)
        except DomainError as exc:
            metrics.AUDIT_APPEND_FAILURES.labels("relay").inc()
            if exc.code in _PERMANENT:
                _log_refused(entry.id, exc.reason)
                rejected[entry.id] = exc.reason
                continue
            log.warning("audit entry not delivered yet", outbox_id=entry.id, reason=exc.reason)
            return done, rejected, entry.id
        done.append(entry.id)
    return done, rejected, None


async def deliver_batched(
    sink: BatchAuditSink, batch: list[PendingEntry]
) -> tuple[list[int], dict[int, str], int | None]:
    """One call per run of one organisation's entries, in order, stopping
    at the first call that may succeed later (none of its entries was
    written: the whole run is retried, in order)."""
    done: list[int] = []
    rejected: dict[int, str] = {}
    for run in _runs(batch):
        try:
            results = await sink.deliver_batch(run)
        except DomainError as exc:
            metrics.AUDIT_APPEND_FAILURES.labels("relay").inc(len(run))
            if exc.code in _PERMANENT:
                for entry in run:
                    _log_refused(entry.id, exc.reason)
                    rejected[entry.id] = exc.reason
                continue
            log.warning(
                "audit entries not delivered yet",
                outbox_id=run[0].id,
                entries=len(run),
                reason=exc.reason,
            )
            return done, rejected, run[0].id
        if len(results) != len(run):
            # Cannot tell which were written: retry the run (at least once).
            log.error("audit sink answered a different number of results", outbox_id=run[0].id)
            return done, rejected, run[0].id
        for entry, refusal in zip(run, results, strict=True):
            if refusal is None:
                done.append(entry.id)
            else:
                metrics.AUDIT_APPEND_FAILURES.labels("relay").inc()
                _log_refused(entry.id, refusal)
                rejected[entry.id] = refusal
    return done, rejected, None


def _log_refused(outbox_id: int, reason: str) -> None:
    log.error(
        "audit entry refused by the audit service; kept in the outbox",
        outbox_id=outbox_id,
        reason=reason,
    )
