"""kyc-tier's database as the flows use it.

Every call is one transaction on a worker thread (`Database.run`). A write
may queue audit entries in the outbox (same transaction), so after it commits
the relay is woken to deliver them. Servicers never see this: they call a
flow, and the flow decides what is one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from identity_store.db import Database
from services.kyc_tier.outbox import OutboxRelay

T = TypeVar("T")


class Store:
    def __init__(self, database: Database, relay: OutboxRelay):
        self.database = database
        self.relay = relay

    async def read(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in one transaction that queues no audit entry."""
        return await self.database.run(work)

    async def write(self, work: Callable[[Session], T], *, audited: bool = True) -> T:
        """`work(session)` in one transaction; its audit entries go out after the
        commit (`audited=False`: it queues none, the relay is left asleep)."""
        result = await self.database.run(work)
        if audited:
            self.relay.wake()
        return result
