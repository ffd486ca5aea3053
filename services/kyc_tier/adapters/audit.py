"""The audit outbox's sink: the audit service's Append and AppendBatch."""

from __future__ import annotations

from identity_platform_api.audit.v1 import audit_pb2, audit_pb2_grpc
from identity_runtime import context
from identity_runtime.clients import ClientFactory
from identity_runtime.errors import Internal
from services.kyc_tier.adapters.calls import call
from services.kyc_tier.outbox import PendingEntry

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
    request id and actor of the call that produced it."""

    def __init__(self, clients: ClientFactory):
        self.stub = clients.stub("audit", audit_pb2_grpc.AuditServiceStub)

    async def deliver(self, entry: PendingEntry) -> None:
        request = _request(entry)
        # kyc-tier appends as itself (its token says "mesh"), for the entry's
        # organisation and actor: the client re-mints them into the token.
        bound = context.bind(
            context.CallContext(
                request_id=entry.request_id or context.new_request_id(),
                org_id=entry.org_id,
                actor=entry.actor,
            )
        )
        try:
            await call("audit", self.stub.Append(request))
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
                    # A redelivery (an answer lost after the commit) is not chained twice.
                    entry_key=f"kyc-tier:outbox:{entry.id}",
                )
                for entry in entries
            ]
        )
        bound = context.bind(
            context.CallContext(
                request_id=context.new_request_id(),
                org_id=entries[0].org_id,
                actor="service:kyc-tier",
            )
        )
        try:
            response = await call("audit", self.stub.AppendBatch(request))
        finally:
            context.reset(bound)
        if len(response.results) != len(entries):
            raise Internal("the audit service answered a different number of results")
        return [
            result.refused.reason or "REFUSED" if result.HasField("refused") else None
            for result in response.results
        ]
