"""gRPC servicer of the audit service: convert, call the core, convert."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from identity_platform_api.audit.v1 import audit_pb2, audit_pb2_grpc
from identity_runtime import context
from identity_runtime.errors import DomainError
from identity_runtime.listing import bound_page_token, open_page_token
from identity_runtime.server import CoreServicer
from services.audit import mapping
from services.audit.bootstrap import AuditCore


class AuditServiceServicer(CoreServicer[AuditCore], audit_pb2_grpc.AuditServiceServicer):
    async def Append(self, request: audit_pb2.AppendRequest, _: Any) -> audit_pb2.AppendResponse:
        written = await self.core.trail.append(
            mapping.draft(request, context.require_org(), context.actor(), context.request_id()),
            context.issuer(),
        )
        return audit_pb2.AppendResponse(entry=mapping.entry(written))

    async def AppendBatch(
        self, request: audit_pb2.AppendBatchRequest, _: Any
    ) -> audit_pb2.AppendBatchResponse:
        tenant_id, actor, request_id = context.require_org(), context.actor(), context.request_id()
        drafts: list[Any] = []
        for item in request.entries:
            try:
                drafts.append(
                    mapping.draft(
                        item.entry,
                        tenant_id,
                        actor,
                        item.request_id or request_id,
                        item.entry_key,
                    )
                )
            except DomainError as refusal:
                drafts.append(refusal)
        results = await self.core.trail.append_batch(drafts, context.issuer())
        return audit_pb2.AppendBatchResponse(results=[mapping.batch_result(r) for r in results])

    async def QueryEntries(
        self, request: audit_pb2.QueryEntriesRequest, _: Any
    ) -> audit_pb2.QueryEntriesResponse:
        org_id = context.require_org()
        query = mapping.query(request, org_id)
        position = open_page_token(request, org_id)
        entries, token = await self.core.trail.query(query, request.page_size, position)
        return audit_pb2.QueryEntriesResponse(
            entries=[mapping.entry(e) for e in entries],
            next_page_token=bound_page_token(token, request, org_id),
        )

    async def VerifyChain(
        self, request: audit_pb2.VerifyChainRequest, _: Any
    ) -> audit_pb2.VerifyChainResponse:
        context.require_org()
        report = await self.core.trail.verify(request.from_sequence)
        return mapping.verify_response(report)

    async def ExportEntries(
        self, request: audit_pb2.ExportEntriesRequest, _: Any
    ) -> AsyncIterator[audit_pb2.ExportEntriesResponse]:
        async for entry in self.core.trail.export(context.require_org(), request.from_sequence):
            yield audit_pb2.ExportEntriesResponse(entry=mapping.entry(entry))
