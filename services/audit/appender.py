"""Group commit: appends that arrive together share one transaction.

Every append must wait for the chain head lock and a durable commit; under
concurrency, taking the lock and syncing the log once for a group instead
of once per entry multiplies throughput without weakening anything: each
caller is answered only after the transaction holding its entries committed,
and a failed transaction fails every caller in it (none of their entries
exist: no partial chain).

The unit of work is a *request*: one Append (one entry) or one AppendBatch
(its valid entries, kept together and in order). One writer task takes the
requests queued, in arrival order, until the group holds `max_batch`
entries (a single request larger than that is a group of its own, never
split), waiting up to `max_wait` seconds for more when the queue runs dry,
chains them in order and commits once. `writers` such writers run at once
(the next group waits on the head row lock while one commits). With group commit off, every request
is its own transaction, written from the caller's task (the appenders then
serialise on the chain head row lock, as separate processes do).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError

from identity_runtime import logs, metrics
from identity_runtime.errors import Unavailable
from identity_runtime.tasks import cancel_and_wait
from identity_store.db import Database
from services.audit.chain import Draft, Entry
from services.audit.log import AuditLog

log = logs.get_logger("identity.audit")


# Most appends one transaction commits together (AUDIT_MAX_BATCH's default).
DEFAULT_MAX_BATCH = 64
# How long the writer waits for more requests once the queue is empty
# (AUDIT_GROUP_COMMIT_MAX_WAIT_SECONDS's default): none, the commit in flight
# is what gathers the next group.
DEFAULT_MAX_WAIT_SECONDS = 0.0

# Group writers at once (AUDIT_GROUP_COMMIT_WRITERS's default). With more
# than one, the next group is formed while one commits and waits on the chain
# head row lock; groups from different writers may then commit in either
# order (each request's entries stay whole and in order). One keeps the chain
# in arrival order; the benchmark showed no clear gain from two on a loaded
# 2-core machine (docs/performance.md).
DEFAULT_WRITERS = 1

_Request = tuple[list[Draft], "asyncio.Future[list[Entry]]"]


def _store_unavailable() -> Unavailable:
    return Unavailable(
        "the audit store is unavailable; nothing was written", metadata={"service": "database"}
    )


class GroupCommitAppender:
    def __init__(
        self,
        database: Database,
        audit_log: AuditLog,
        max_batch: int = DEFAULT_MAX_BATCH,
        committed: Callable[[list[Entry]], Awaitable[None]] | None = None,
        *,
        group_commit: bool = True,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
        writers: int = DEFAULT_WRITERS,
    ):
        self.database = database
        self.audit_log = audit_log
        self.max_batch = max_batch
        self.group_commit = group_commit
        self.max_wait = max_wait
        self.writers = writers
        # Told of every committed group (the signed checkpoints), after its callers.
        self.committed = committed
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._workers: list[asyncio.Task] = []
        # One writer forms a group at a time, so groups take requests in arrival order.
        self._forming = asyncio.Lock()
        # A request taken from the queue that opens the next group.
        self._held: _Request | None = None
        # Without group commit, the hook still sees groups in commit order.
        self._hook_lock = asyncio.Lock()

    def start(self) -> None:
        if not self._workers and self.group_commit:
            self._workers = [
                asyncio.create_task(self._run(), name=f"audit-group-commit-{n}")
                for n in range(self.writers)
            ]

    async def close(self) -> None:
        for worker in self._workers:
            await cancel_and_wait(worker)
        self._workers = []
        # Requests still queued were never written: tell their callers so.
        pending = [self._held] if self._held is not None else []
        self._held = None
        while not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for _, future in pending:
            if not future.done():
                future.set_exception(_store_unavailable())

    async def append(self, draft: Draft) -> Entry:
        (entry,) = await self.append_many([draft])
        return entry

    async def append_many(self, drafts: list[Draft]) -> list[Entry]:
        """Chain `drafts` contiguously, in order, in one transaction; answered
        once that transaction committed."""
        if not drafts:
            return []
        if not self.group_commit:
            return await self._write_alone(drafts)
        future: asyncio.Future[list[Entry]] = asyncio.get_running_loop().create_future()
        await self._queue.put((list(drafts), future))
        # Shielded: a caller that gives up does not cancel a write in flight.
        return await asyncio.shield(future)

    async def _write_alone(self, drafts: list[Draft]) -> list[Entry]:
        try:
            entries = await self.database.run(
                functools.partial(self.audit_log.append, drafts=drafts)
            )
        except (DBAPIError, Unavailable):
            metrics.AUDIT_APPEND_FAILURES.labels("store").inc(len(drafts))
            log.exception("audit append failed; nothing was written", batch=len(drafts))
            raise _store_unavailable() from None
        await self._after_commit(entries)
        return entries

    async def _take(self) -> _Request:
        if self._held is not None:
            request, self._held = self._held, None
            return request
        return await self._queue.get()

    async def _next_group(self) -> list[_Request]:
        group = [await self._take()]
        size = len(group[0][0])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while size < self.max_batch:
            if self._queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        request = await self._queue.get()
                except TimeoutError:
                    break
            else:
                request = self._queue.get_nowait()
            if size + len(request[0]) > self.max_batch:
                # It would pass the bound: it opens the next group (whole).
                self._held = request
                break
            group.append(request)
            size += len(request[0])
        return group

    async def _run(self) -> None:
        while True:
            async with self._forming:
                group = await self._next_group()
            drafts = [draft for drafts, _ in group for draft in drafts]
            try:
                entries = await self.database.run(
                    functools.partial(self.audit_log.append, drafts=drafts)
                )
            except (DBAPIError, Unavailable):
                metrics.AUDIT_APPEND_FAILURES.labels("store").inc(len(drafts))
                log.exception(
                    "audit append failed; nothing of the group was written",
                    batch=len(drafts),
                    requests=len(group),
                )
                error = _store_unavailable()
                for _, future in group:
                    if not future.done():
                        future.set_exception(error)
                continue
            except Exception as exc:  # noqa: BLE001 - answer every waiter, keep the worker alive
                metrics.AUDIT_APPEND_FAILURES.labels("store").inc(len(drafts))
                log.exception("audit append failed; nothing of the group was written")
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for request_drafts, future in group:
                mine = entries[start : start + len(request_drafts)]
                start += len(request_drafts)
                if not future.done():
                    future.set_result(mine)
            await self._after_commit(entries)

    async def _after_commit(self, entries: list[Entry]) -> None:
        if self.committed is None:
            return
        try:
            async with self._hook_lock:
                await self.committed(entries)
        except Exception:  # noqa: BLE001 - the entries are committed; keep the worker
            log.exception("after-commit hook failed")
