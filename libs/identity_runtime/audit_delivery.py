"""How a service's audit outbox relay hands claimed entries to the audit
service: one call per entry, or one AppendBatch per run of one
organisation's entries (the sink decides by having `deliver_batch`). Each
returns what to settle: the outbox ids delivered, those refused for good
(with the reason), and the first id a later pass must retry (None when the
whole batch was handled).

kyc-tier (its audit outbox) and face-match (its lifecycle transitions) relay
through this module; `GrpcAuditSink` is the sink both use, each with its own
service actor and entry-key prefix."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import grpc

from identity_platform_api.audit.v1 import audit_pb2, audit_pb2_grpc
from identity_runtime import context, metrics
from identity_runtime.clients import ClientFactory
from identity_runtime.errors import DomainError, Internal
from identity_runtime.logs import get_logger
from identity_runtime.status import remote_error

log = get_logger("identity.audit_delivery")

# Refusals that retrying cannot fix (the default; a relay may pass its own).
PERMANENT = frozenset(
    {"INVALID_ARGUMENT", "FAILED_PRECONDITION", "PERMISSION_DENIED", "UNAUTHENTICATED"}
)


@dataclass(frozen=True)
class PendingEntry:
    """One claimed outbox entry: `id` is the outbox's own (it settles the row
    and, without `entry_key`, makes the entry key); `outcome` is "success",
    "denied" or "failed"."""

    id: int
    org_id: str
    request_id: str
    actor: str
    action: str
    subject: str
    outcome: str
    evidence_hashes: dict[str, str]
    details: dict[str, str]
    # The entry's key when the outbox keeps one (e.g. face-match's, which
    # never reuses a key); "" = `<key_prefix>:<id>`.
    entry_key: str = ""


class AuditSink(Protocol):
    """Where the relay delivers; `GrpcAuditSink` below is the real one."""

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
    sink: AuditSink, batch: list[PendingEntry], permanent: Collection[str] = PERMANENT
) -> tuple[list[int], dict[int, str], int | None]:
    """One call per entry, in order, stopping at the first that may succeed later."""
    done: list[int] = []
    rejected: dict[int, str] = {}
    for entry in batch:
        try:
            await sink.deliver(entry)
        except DomainError as exc:
            metrics.AUDIT_APPEND_FAILURES.labels("relay").inc()
            if exc.code in permanent:
                _log_refused(entry.id, exc.reason)
                rejected[entry.id] = exc.reason
                continue
            log.warning("audit entry not delivered yet", outbox_id=entry.id, reason=exc.reason)
            return done, rejected, entry.id
        done.append(entry.id)
    return done, rejected, None


async def deliver_batched(
    sink: BatchAuditSink, batch: list[PendingEntry], permanent: Collection[str] = PERMANENT
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
            if exc.code in permanent:
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


_OUTCOMES = {
    "success": audit_pb2.OUTCOME_SUCCESS,
    "denied": audit_pb2.OUTCOME_DENIED,
    "failed": audit_pb2.OUTCOME_FAILED,
}


def _request(entry: PendingEntry) -> audit_pb2.AppendRequest:
    return audit_pb2.AppendRequest(
        actor=entry.actor,
        action=entry.action,
        subject=entry.subject,
        outcome=_OUTCOMES[entry.outcome],
        evidence_hashes=entry.evidence_hashes,
        details=entry.details,
    )


class GrpcAuditSink:
    """Delivers outbox entries to the audit service, each under the tenant,
    request id and actor of the call that produced it.

    The relaying service appends as itself (its token says "mesh"); the
    client re-mints the organisation and actor bound here into the token.
    `service_actor` is the actor of a whole AppendBatch call (e.g.
    "service:kyc-tier"); `key_prefix` makes each entry's key
    (`<key_prefix>:<outbox id>`, e.g. "kyc-tier:outbox:42") unless the entry
    brings its own (`PendingEntry.entry_key`), so that a redelivery (an
    answer lost after the commit) is not chained twice. A key must never be
    reused for another entry: the chain drops an entry whose key it holds."""

    def __init__(self, clients: ClientFactory, *, service_actor: str, key_prefix: str):
        self.stub = clients.stub("audit", audit_pb2_grpc.AuditServiceStub)
        self.service_actor = service_actor
        self.key_prefix = key_prefix

    async def deliver(self, entry: PendingEntry) -> None:
        request = _request(entry)
        bound = context.bind(
            context.CallContext(
                request_id=entry.request_id or context.new_request_id(),
                org_id=entry.org_id,
                actor=entry.actor,
            )
        )
        try:
            await self.stub.Append(request)
        except grpc.aio.AioRpcError as exc:
            raise remote_error(exc, "audit") from None
        finally:
            context.reset(bound)

    async def deliver_batch(self, entries: list[PendingEntry]) -> list[str | None]:
        """One AppendBatch for entries of one organisation, each with its own
        request id and actor; per entry None (appended) or the refusal's reason."""
        org_ids = {entry.org_id for entry in entries}
        if len(org_ids) != 1:
            raise ValueError("one AppendBatch carries one organisation's entries")
        request = audit_pb2.AppendBatchRequest(
            entries=[
                audit_pb2.BatchEntry(
                    entry=_request(entry),
                    request_id=entry.request_id,
                    entry_key=entry.entry_key or f"{self.key_prefix}:{entry.id}",
                )
                for entry in entries
            ]
        )
        bound = context.bind(
            context.CallContext(
                request_id=context.new_request_id(),
                org_id=entries[0].org_id,
                actor=self.service_actor,
            )
        )
        try:
            response = await self.stub.AppendBatch(request)
        except grpc.aio.AioRpcError as exc:
            raise remote_error(exc, "audit") from None
        finally:
            context.reset(bound)
        if len(response.results) != len(entries):
            raise Internal("the audit service answered a different number of results")
        return [
            result.refused.reason or "REFUSED" if result.HasField("refused") else None
            for result in response.results
        ]
