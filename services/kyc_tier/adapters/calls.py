"""Calling a downstream service (its failures become domain errors), and
reading back the opaque values the flows forward between services."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from identity_runtime.status import remote_error

T = TypeVar("T")
M = TypeVar("M", bound=Message)


async def call(service: str, pending: Awaitable[T]) -> T:
    try:
        return await pending
    except grpc.aio.AioRpcError as exc:
        raise remote_error(exc, service) from None


def opaque(value: object, kind: type[M]) -> M:
    """A value the flows forwarded without looking inside, back as the message
    another adapter made it (crops, frame evidence, embeddings)."""
    if not isinstance(value, kind):
        raise TypeError(
            f"expected a {kind.__name__} from a gRPC adapter, not {type(value).__name__}"
        )
    return value
