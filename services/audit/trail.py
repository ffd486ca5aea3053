"""The audit service's core operations, async (database work on worker threads)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator

from identity_runtime import metrics
from identity_runtime.errors import invalid_field
from identity_store.db import Database
from services.audit.appender import GroupCommitAppender
from services.audit.chain import Draft, Entry, VerifyReport, validate_draft
from services.audit.log import AuditLog, QueryFilter


class AuditTrail:
    def __init__(self, database: Database, audit_log: AuditLog, appender: GroupCommitAppender):
        self.database = database
        self.log = audit_log
        self.appender = appender

    async def append(self, draft: Draft) -> Entry:
        return await self.appender.append(validate_draft(draft))

    async def query(
        self, query: QueryFilter, page_size: int, page_token: str
    ) -> tuple[list[Entry], str]:
        return await self.database.run(lambda s: self.log.query(s, query, page_size, page_token))

    async def export(self, tenant_id: str, from_sequence: int) -> AsyncIterator[Entry]:
        if from_sequence < 0:
            raise invalid_field("from_sequence", "must not be negative")
        after = max(from_sequence, 1) - 1
        while True:
            batch = await self.database.run(
                functools.partial(self.log.export_batch, after=after, tenant_id=tenant_id)
            )
            if not batch:
                return
            for entry in batch:
                yield entry
            after = batch[-1].sequence

    async def verify(self, from_sequence: int) -> VerifyReport:
        if from_sequence < 0:
            raise invalid_field("from_sequence", "must not be negative")
        report = await asyncio.to_thread(self.log.verify, self.database.transaction, from_sequence)
        metrics.AUDIT_VERIFICATIONS.labels("intact" if report.intact else "broken").inc()
        return report
