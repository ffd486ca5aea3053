"""Group commit: appends that arrive together share one transaction.

Every append must wait for the chain head lock and a durable commit; under
concurrency, taking the lock and syncing the log once for a batch instead
of once per entry multiplies throughput without weakening anything: each
caller is answered only after the transaction holding its entry committed,
and a failed transaction fails every caller in it (none of their entries
exist).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError

from identity_runtime import logs, metrics
from identity_runtime.errors import Unavailable
from identity_store.db import Database
from services.audit.chain import Draft, Entry
from services.audit.log import AuditLog

log = logs.get_logger("identity.audit")


# Most appends one transaction commits together (AUDIT_MAX_BATCH's default).
DEFAULT_MAX_BATCH = 64


class GroupCommitAppender:
    def __init__(
        self,
        database: Database,
        audit_log: AuditLog,
        max_batch: int = DEFAULT_MAX_BATCH,
        committed: Callable[[list[Entry]], Awaitable[None]] | None = None,
    ):
        self.database = database
        self.audit_log = audit_log
        self.max_batch = max_batch
        # Told of every committed batch (the signed checkpoints), after its callers.
        self.committed = committed
        self._queue: asyncio.Queue[tuple[Draft, asyncio.Future[Entry]]] = asyncio.Queue()
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def append(self, draft: Draft) -> Entry:
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        await self._queue.put((draft, future))
        # Shielded: a caller that gives up does not cancel a write in flight.
        return await asyncio.shield(future)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            drafts = [draft for draft, _ in batch]
            try:
                entries = await self.database.run(
                    functools.partial(self.audit_log.append, drafts=drafts)
                )
            except DBAPIError:
                metrics.AUDIT_APPEND_FAILURES.labels("store").inc(len(batch))
                log.exception(
                    "audit append failed; nothing of the batch was written", batch=len(batch)
                )
                error = Unavailable(
                    "the audit store is unavailable; nothing was written",
                    metadata={"service": "database"},
                )
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            except Exception as exc:  # noqa: BLE001 - answer every waiter, keep the worker alive
                metrics.AUDIT_APPEND_FAILURES.labels("store").inc(len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), entry in zip(batch, entries, strict=True):
                if not future.done():
                    future.set_result(entry)
            if self.committed is not None:
                try:
                    await self.committed(entries)
                except Exception:  # noqa: BLE001 - the entries are committed; keep the worker
                    log.exception("after-commit hook failed")
