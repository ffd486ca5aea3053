"""How the capture pipeline finishes an attempt that does not record a
verification: a refusal (a DomainError) as REFUSED with a denied audit entry,
anything else (a crash, a cancelled call, a dependency that is down or too
slow) as INTERRUPTED, audited as failed. An interrupted attempt is not
final: the retry of the same bundle resumes it (flows/replays.py), even
after liveness spent its nonce and challenge."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy.orm import Session

from identity_crypto.errors import KeyDestroyed
from identity_runtime.errors import DomainError, FailedPrecondition
from services.kyc_tier import models, outbox, records
from services.kyc_tier.flows.capture import Step
from services.kyc_tier.ports import Reason
from services.kyc_tier.store import Store

INTERRUPTED = Reason("INTERRUPTED", "the attempt did not finish")
# Errors that say the platform could not finish the attempt, not that the
# request is refused: a dependency down or cut off (DEPENDENCY_UNAVAILABLE,
# CIRCUIT_OPEN), a deadline, an internal failure. The caller is told to retry
# (503/504), so the attempt must stay resumable.
OUTAGE_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN"})
# Refusals that are about the request's target, not the attempt: no attempt row.
_NOT_AN_ATTEMPT = frozenset({"CUSTOMER_NOT_FOUND", "TENANT_MISSING"})
# What a capture meets downstream when its customer's erasure ran meanwhile:
# a destroyed key (kyc-tier's or matching's), the references retired, the
# devices forgotten.
# An erased customer's capture never answers KEY_DESTROYED: CUSTOMER_ERASED.
ERASURE_EFFECTS = frozenset(
    {KeyDestroyed.default_reason, "NO_ACTIVE_ENROLLMENT", "DEVICE_NOT_FOUND"}
)


@contextlib.asynccontextmanager
async def scope(
    store: Store,
    step: Step,
    org_id: str,
    customer_id: str,
    attempt_id: str,
    interrupt: Callable[[Reason | None], Awaitable[None]],
) -> AsyncIterator[None]:
    """Refusals inside the block finish the attempt (or add one) as refused,
    with an audit entry; an outage (`OUTAGE_CODES`) or any other failure
    `interrupt`s it, the outage named as its cause."""
    try:
        yield
    except DomainError as raised:
        if raised.code in OUTAGE_CODES:
            # Interrupted, not refused: the retry of the same bundle resumes it.
            # (Before an attempt started, nothing was consumed and nothing is written.)
            await interrupt(Reason(raised.reason, raised.message))
            raise
        error = await _erasure_race(store, org_id, customer_id, raised)
        if error.reason in _NOT_AN_ATTEMPT and not attempt_id:
            raise
        reason = Reason(error.reason, error.message)
        details = {"reason": reason.code, "code": error.code}

        def refuse(session: Session) -> None:
            if attempt_id:
                records.finish_attempt(session, attempt_id, "refused", [reason])
            else:
                records.add_attempt(session, org_id, customer_id, step.kind, "refused", [reason])
            outbox.record(
                session, org_id, step.action, f"customer:{customer_id}", "denied", details=details
            )

        await store.write(refuse)
        if error is raised:
            raise
        raise error from raised
    except BaseException:
        await interrupt(None)
        raise


async def _erasure_race(
    store: Store, org_id: str, customer_id: str, error: DomainError
) -> DomainError:
    """A capture racing its customer's erasure may reach a key the erasure
    destroyed meanwhile (kyc-tier's bundle or NIK key between the customer's
    check and the seal, matching's template key during the assessment), or
    another of its effects (`ERASURE_EFFECTS`): that is the erased customer's
    refusal, CUSTOMER_ERASED, as the flows declare, not KEY_DESTROYED. (The
    transaction that met the key wrote nothing.) The same reasons for a
    customer still active (a breach revocation, no reference yet) stay as they are."""
    if error.reason not in ERASURE_EFFECTS or not customer_id:
        return error
    status = await store.read(
        lambda s: getattr(s.get(models.Customer, customer_id), "status", "active")
    )
    if status == "active":
        return error
    return FailedPrecondition("the customer was erased", "CUSTOMER_ERASED")


async def interrupt(
    store: Store,
    step: Step,
    org_id: str,
    customer_id: str,
    attempt_id: str,
    cause: Reason | None = None,
) -> None:
    """Best effort: the attempt finished as interrupted, audited as failed
    (if this process dies first, the recovery sweep does it). The write runs
    to its end even if the call is cancelled again meanwhile (a deadline)."""
    if not attempt_id:
        return
    write = asyncio.ensure_future(
        store.write(
            lambda s: interrupt_attempt(s, step.action, org_id, customer_id, attempt_id, cause)
        )
    )
    with contextlib.suppress(Exception):
        await asyncio.shield(write)


def interrupt_attempt(
    session: Session,
    action: str,
    org_id: str,
    customer_id: str,
    attempt_id: str,
    cause: Reason | None = None,
) -> None:
    """The attempt (if it was written) finished as interrupted, audited as
    failed, with its `cause` when known (an outage's reason)."""
    if session.get(models.Attempt, attempt_id) is None:
        return
    records.finish_attempt(session, attempt_id, "interrupted", _reasons(cause))
    _audit_interrupted(session, action, org_id, customer_id, cause, attempt_id=attempt_id)


def _reasons(cause: Reason | None) -> list[Reason]:
    return [INTERRUPTED] if cause is None else [INTERRUPTED, cause]


def _audit_interrupted(
    session: Session,
    action: str,
    org_id: str,
    customer_id: str,
    cause: Reason | None,
    **details: str,
) -> None:
    details["reason"] = INTERRUPTED.code
    if cause is not None:
        details["cause"] = cause.code
    outbox.record(session, org_id, action, f"customer:{customer_id}", "failed", details=details)
