"""`@idempotent(ResponseClass)`: a servicer method honouring the
`idempotency-key` metadata (the gateway's `Idempotency-Key` header) through
the core's `IdempotentRequests` (services/kyc_tier/idempotency.py)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from identity_runtime.context import require_org
from services.kyc_tier.idempotency import METADATA_KEY, IdempotentRequests

M = TypeVar("M", bound=Message)
Method = Callable[[Any, Any, Any], Awaitable[M]]


def _key(ctx: grpc.aio.ServicerContext) -> str:
    for name, value in ctx.invocation_metadata() or ():
        if name == METADATA_KEY:
            return value if isinstance(value, str) else value.decode()
    return ""


def _customer_of(request: Message, response: Message) -> str:
    """The customer a request (its `customer_id`) or response is about: its
    own `customer_id` or that of a message it holds (a `customer`, a decided
    review's `item`), so that an erasure drops the kept response (it may hold
    the customer's name, or an analyst's note about them)."""
    held = [
        value
        for field, value in response.ListFields()
        if field.message_type is not None and not field.is_repeated
    ]
    for message in (request, response, *held):
        customer_id = getattr(message, "customer_id", "")
        if customer_id:
            return str(customer_id)
    return ""


def idempotent(
    response_class: type[M], *, kept_after_erasure: bool = False, answers_current: bool = False
) -> Callable[[Method[M]], Method[M]]:
    """A servicer method answering `response_class` that honours
    `idempotency-key` metadata (its servicer's core has `idempotency`).
    `kept_after_erasure`: the response holds no personal data (an erasure's
    receipt) and stays kept once its customer's erasure has begun.
    `answers_current`: a repeat answers the current state (`IdempotentRequests.run`)."""

    def decorate(method: Method[M]) -> Method[M]:
        @functools.wraps(method)
        async def honouring(self: Any, request: Message, ctx: grpc.aio.ServicerContext) -> M:
            key = _key(ctx)
            if not key:
                return await method(self, request, ctx)
            answered: list[M] = []

            async def call() -> tuple[bytes, str]:
                answered.append(await method(self, request, ctx))
                return answered[-1].SerializeToString(), _customer_of(request, answered[-1])

            requests: IdempotentRequests = self.core.idempotency
            encoded = await requests.run(
                require_org(),
                key,
                method.__qualname__,
                request.SerializeToString(deterministic=True),
                call,
                kept_after_erasure=kept_after_erasure,
                answers_current=answers_current,
            )
            return answered[-1] if answered else response_class.FromString(encoded)

        return honouring

    return decorate
