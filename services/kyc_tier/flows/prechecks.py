"""Protocol checks before model work: a bad request costs nothing.

A capture flow may give `CapturePipeline.run` a `precheck`: the request's
protocol checks (step-up: liveness.CheckAttestation, the device signature,
capture time, nonce and challenge, read-only, with the customer's enrolled
reference). It is started beside the attempt's first transaction (`begin`),
so it adds no latency, and awaited inside the attempt's scope before the
flow's `assess`: a refusal finishes the attempt as refused, audited, before
capture-quality, PAD or embedding run. It consumes nothing (liveness checks
again in the transaction that consumes), so it may run before the customer
is resolved; a failing `begin`, or one that finds the request answered
before (a replay), discards it. An attempt that resumes a cut-short
capture runs it again with `resume` (its nonce may be spent).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from services.kyc_tier.ports import Liveness, SignedCapture

T = TypeVar("T")
# A request's protocol checks, consuming nothing (argument: resume).
Precheck = Callable[[bool], Awaitable[None]]


class CheckedLiveness(Liveness, Protocol):
    async def check_attestation(self, capture: SignedCapture, resume: bool = False) -> None:
        """`check`'s protocol checks alone (signature, nonce, challenge),
        consuming nothing: refuses a bad request before any model work."""


def start(precheck: Precheck | None) -> asyncio.Future[None] | None:
    return asyncio.ensure_future(precheck(False)) if precheck is not None else None


async def begun(checking: asyncio.Future[None] | None, begin: Awaitable[T]) -> T:
    """`begin`'s result; the precheck discarded when `begin` fails."""
    try:
        return await begin
    except BaseException:
        await discard(checking)
        raise


async def settle(
    checking: asyncio.Future[None] | None, precheck: Precheck | None, resume: bool
) -> None:
    """Inside the attempt's scope: the precheck's refusal refuses the attempt."""
    if checking is None or precheck is None:
        return
    if resume:
        await discard(checking)
        await precheck(True)
    else:
        await checking


async def discard(task: asyncio.Future[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
