"""Erasure of a customer (UU PDP) that cannot half-happen.

    POST /api/identity/customers/{id}/erase
    POST /api/identity/customers/{id}/legal-hold      (internal scope)

1. **Recorded first.** One kyc-tier transaction writes the erasure row
   (`state=requested`), its steps (`erasure_steps`, the erasure's outbox)
   and an audit entry, and turns the customer to `erasing`: from that commit
   on every flow refuses the customer (CUSTOMER_ERASED), and nothing has
   been destroyed yet. A legal hold refuses here (LEGAL_HOLD), and so does
   the organisation's limit (10 erasures per 5 minutes, counted in this
   database so that every gateway replica and direct gRPC caller share it).
2. **Carried out step by step**, in order, each idempotent and marked done
   once it has happened:
     kyc.personal_data      personal fields and sealed frames deleted, the
                            external id replaced, NIK and bundle keys
                            destroyed, capture digests and kept idempotent
                            responses dropped, pending review items
                            withdrawn, and the step marked: one transaction
                            (first: it needs no other service)
     matching.retire        matching retires the customer's face references
     matching.shred         matching destroys the template key
     liveness.forget_devices  liveness deletes the customer's devices
     kyc.mark_erased        status erased, tier settled to none, erasure
                            completed, audit entry: one transaction
   A step that fails (a dependency down) leaves the erasure `requested`; a
   crash leaves it so too. `recovery.RecoveryWorker` resumes every unfinished erasure
   at start-up and then periodically, under a lease, so two replicas never
   run the same erasure at once; a remote step redone after a crash is
   harmless (retiring, shredding and forgetting twice change nothing).
3. **The reply is a receipt**: what was destroyed so far, what is retained
   and until when (verification rows, the retired enrollment rows and the
   audit log stay 7 years as regulated records; the capture frames are
   deleted at once, with their key).

The database side is `erasures.py` (request, steps), `receipts.py` (the
receipt) and `customers.py` (legal hold).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from identity_runtime import context
from identity_runtime.errors import DomainError
from identity_runtime.logs import get_logger
from identity_runtime.reason_codes import check_reason
from identity_store.types import utcnow
from services.kyc_tier import (
    customers,
    erasures,
    outbox,
    records,
    retention_overrides,
    withdrawals,
)
from services.kyc_tier.erasures import (
    FORGET_DEVICES,
    MARK_ERASED,
    PERSONAL_DATA,
    RETIRE,
    SHRED,
)
from services.kyc_tier.pii import PiiVault
from services.kyc_tier.ports import Clock, Liveness, Matcher
from services.kyc_tier.receipts import ErasureResult, receipt
from services.kyc_tier.store import Store

__all__ = ["ErasureFlow", "ErasureInterrupted", "ErasureResult"]

log = get_logger("identity.kyc_tier.erasure")

STEPS = erasures.STEPS
# Failures a later attempt may get past; the others are logged as errors
# (and retried all the same: an erasure is never abandoned).
_RETRYABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN", "ABORTED"})


class ErasureInterrupted(Exception):
    """Raised by a test's fault hook to stop an erasure between two steps
    (as a crash would: the lease is not released)."""


# Called after the request is recorded ("recorded") and after each step
# commits (its name): tests make it raise to simulate a crash there.
FaultHook = Callable[[str], None]


@dataclass
class ErasureFlow:
    store: Store
    vault: PiiVault
    matcher: Matcher
    liveness: Liveness
    clock: Clock = utcnow
    lease: timedelta = timedelta(seconds=60)
    fault: FaultHook | None = None

    async def erase(self, org_id: str, customer_id: str, reason: str) -> ErasureResult:
        check_reason(reason)
        erasure_id, leased = await self._request(org_id, customer_id, reason)
        self._hook("recorded")
        await self.carry_out(erasure_id, leased=leased)
        return await self.receipt(org_id, customer_id)

    async def _request(self, org_id: str, customer_id: str, reason: str) -> tuple[str, bool]:
        now = self.clock()
        try:
            return await self.store.write(
                lambda s: erasures.record_request(s, org_id, customer_id, reason, now, self.lease)
            )
        except DomainError as refused:
            denied = refused.reason
            if denied in erasures.AUDITED_REFUSALS:
                await self.store.write(
                    lambda s: outbox.record(
                        s,
                        org_id,
                        "customer.erase",
                        f"customer:{customer_id}",
                        "denied",
                        details={"reason": denied},
                    )
                )
            raise

    async def carry_out(self, erasure_id: str, *, leased: bool = False) -> bool:
        """Run the erasure's remaining steps under a lease (`leased`: the
        caller already holds it); True when it is complete. A step that
        cannot run now leaves it to the worker."""
        if leased:
            claimed = await self.store.read(lambda s: erasures.subject(s, erasure_id))
        else:
            found = await self.store.write(
                lambda s: erasures.claim(s, erasure_id, self.clock(), self.lease), audited=False
            )
            if found is None:
                return False
            claimed = found
        org_id, customer_id = claimed
        try:
            with _as_org(org_id):
                for step in await self.store.read(lambda s: erasures.pending_steps(s, erasure_id)):
                    await self._run(step, erasure_id, org_id, customer_id)
                    self._hook(step)
        except DomainError as failed:
            error = failed.reason
            if failed.code in _RETRYABLE:
                log.warning(
                    "erasure step failed; retried later", erasure_id=erasure_id, reason=error
                )
            else:
                log.error(
                    "erasure step refused; retried later", erasure_id=erasure_id, reason=error
                )
            await self.store.write(lambda s: erasures.release(s, erasure_id, error), audited=False)
            return False
        await self.store.write(lambda s: erasures.release(s, erasure_id, None), audited=False)
        return True

    async def _run(self, step: str, erasure_id: str, org_id: str, customer_id: str) -> None:
        if step == RETIRE:
            await self.matcher.retire(customer_id, "erasure")
            # Every reference of the customer is retired now (the same count
            # when the step is redone after a crash).
            references = await self.matcher.list_enrollments(customer_id, include_retired=True)
            await self._mark(erasure_id, step, {"enrollments_retired": len(references)})
        elif step == SHRED:
            destroyed = await self.matcher.shred(customer_id)
            await self._mark(erasure_id, step, {"keys_destroyed": destroyed})
        elif step == FORGET_DEVICES:
            forgotten = await self.liveness.forget_devices(customer_id)
            await self._mark(erasure_id, step, {"devices_forgotten": forgotten})
        elif step == PERSONAL_DATA:

            def erase_personal_data(session: Any) -> None:
                customer = records.load_customer(session, org_id, customer_id, for_update=True)
                destroyed = customers.erase_personal_data(session, self.vault, customer)
                now = self.clock()
                closed = withdrawals.withdraw_pending(session, org_id, customer_id, erasure_id, now)
                withdrawals.forget_notes(session, org_id, customer_id)
                result = {"keys_destroyed": destroyed, "reviews_withdrawn": closed}
                erasures.done(session, erasure_id, step, result)

            await self.store.write(erase_personal_data, audited=False)
        elif step == MARK_ERASED:
            await self.store.write(
                lambda s: erasures.mark_erased(s, erasure_id, org_id, customer_id, self.clock())
            )

    async def _mark(self, erasure_id: str, step: str, result: dict[str, int]) -> None:
        await self.store.write(lambda s: erasures.done(s, erasure_id, step, result), audited=False)

    def _hook(self, point: str) -> None:
        if self.fault is not None:
            self.fault(point)

    async def resume_pending(self) -> int:
        """Carry out every unfinished erasure no worker holds; how many completed."""
        found = await self.store.read(lambda s: erasures.pending(s, self.clock()))
        completed = 0
        for erasure_id in found:
            if await self.carry_out(erasure_id):
                completed += 1
        return completed

    async def receipt(self, org_id: str, customer_id: str) -> ErasureResult:
        return await self.store.read(lambda s: receipt(s, org_id, customer_id))

    async def set_legal_hold(
        self, org_id: str, customer_id: str, hold: bool, reason: str
    ) -> customers.CustomerView:
        return await self.store.write(
            lambda s: customers.set_legal_hold(s, org_id, customer_id, hold, reason, self.clock())
        )

    async def set_retention_override(
        self, org_id: str, data_class: str, days: int, basis: str
    ) -> tuple[int, int]:
        """(the period now in force, the declared one), in days; 0 clears."""

        actor = context.actor() or "service:kyc-tier"

        def write(session: Session) -> tuple[int, int]:
            declared = retention_overrides.declared_days(data_class)
            if days == 0:
                retention_overrides.clear_override(session, org_id, data_class, actor)
                return declared, declared
            row = retention_overrides.set_override(session, org_id, data_class, days, basis, actor)
            return row.period_days, declared

        return await self.store.write(write)


@contextlib.contextmanager
def _as_org(org_id: str) -> Iterator[None]:
    """The organisation's call context for a step's mesh calls (the worker
    runs outside any request)."""
    current = context.current()
    if current is not None and current.org_id == org_id:
        yield
        return
    token = context.bind(
        context.CallContext(
            request_id=current.request_id if current else context.new_request_id(),
            org_id=org_id,
            actor="service:kyc-tier.erasure",
        )
    )
    try:
        yield
    finally:
        context.reset(token)
