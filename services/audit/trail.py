"""The audit service's core operations, async (database work on worker threads)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from identity_runtime import metrics
from identity_runtime.errors import DomainError, invalid_field
from identity_store.db import Database
from services.audit.appender import GroupCommitAppender
from services.audit.chain import (
    TAIL_TRUNCATED,
    Draft,
    Entry,
    VerifyReport,
    check_appender,
    validate_draft,
)
from services.audit.log import AuditLog, QueryFilter

# Most entries one AppendBatch carries.
MAX_BATCH_ENTRIES = 500


class AuditTrail:
    def __init__(self, database: Database, audit_log: AuditLog, appender: GroupCommitAppender):
        self.database = database
        self.log = audit_log
        self.appender = appender

    async def append(self, draft: Draft, issuer: str) -> Entry:
        """`draft` chained; `issuer` is the mesh service appending it."""
        return await self.appender.append(check_appender(validate_draft(draft), issuer))

    async def append_batch(
        self, drafts: Sequence[Draft | DomainError], issuer: str
    ) -> list[Entry | DomainError]:
        """Validate each draft on its own; chain the valid ones together, in
        order, in one transaction. One result per draft, in order: the entry
        written, or why that draft was refused (nothing of it was written).
        A draft the caller could not even build arrives as its refusal."""
        if not drafts:
            raise invalid_field("entries", "at least one entry")
        if len(drafts) > MAX_BATCH_ENTRIES:
            raise invalid_field("entries", f"at most {MAX_BATCH_ENTRIES} entries")
        checked: list[Draft | DomainError] = []
        for draft in drafts:
            try:
                checked.append(
                    draft
                    if isinstance(draft, DomainError)
                    else check_appender(validate_draft(draft), issuer)
                )
            except DomainError as refusal:
                checked.append(refusal)
        valid = [d for d in checked if not isinstance(d, DomainError)]
        written = iter(await self.appender.append_many(valid))
        return [d if isinstance(d, DomainError) else next(written) for d in checked]

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

    async def verify(self, from_sequence: int, *, reaches: int = 0) -> VerifyReport:
        """Verify the chain from `from_sequence` and count the result.
        `reaches`: a sequence known to have been committed (an earlier
        verification got that far): a head behind it means the newest
        entries were cut off and the head rewound (TAIL_TRUNCATED)."""
        if from_sequence < 0:
            raise invalid_field("from_sequence", "must not be negative")
        report = await asyncio.to_thread(self.log.verify, self.database.transaction, from_sequence)
        if report.intact and report.last_sequence < reaches:
            report = replace(
                report,
                intact=False,
                first_bad_sequence=report.last_sequence + 1,
                problem=TAIL_TRUNCATED,
            )
        metrics.AUDIT_VERIFICATIONS.labels("intact" if report.intact else "broken").inc()
        return report
