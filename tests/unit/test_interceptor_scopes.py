"""Every kind of RPC (unary or streaming on either side) runs inside an
interceptor's scope, and keeps its (de)serialisers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from identity_runtime.interceptors import _wrap_handler


async def _one(request: Any, ctx: Any) -> str:
    return f"one:{request}"


async def _many(request: Any, ctx: Any) -> AsyncIterator[str]:
    for part in ("a", "b"):
        yield f"{request}:{part}"


KINDS = {
    "unary_unary": (grpc.unary_unary_rpc_method_handler, _one, False),
    "unary_stream": (grpc.unary_stream_rpc_method_handler, _many, True),
    "stream_unary": (grpc.stream_unary_rpc_method_handler, _one, False),
    "stream_stream": (grpc.stream_stream_rpc_method_handler, _many, True),
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_runs_inside_the_scope(kind: str) -> None:
    make, behaviour, streams = KINDS[kind]
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def scope(method: str, ctx: Any) -> AsyncIterator[None]:
        events.append(f"enter {method}")
        yield
        events.append("exit")

    original = make(behaviour, request_deserializer=bytes, response_serializer=str)
    wrapped = _wrap_handler(original, "/pkg.Service/Call", scope)
    assert getattr(wrapped, kind) is not None
    assert (wrapped.request_deserializer, wrapped.response_serializer) == (bytes, str)

    async def call() -> Any:
        result = getattr(wrapped, kind)("x", None)
        if streams:
            return [item async for item in result]
        return await result

    answer = asyncio.run(call())
    assert answer == (["x:a", "x:b"] if streams else "one:x")
    assert events == ["enter /pkg.Service/Call", "exit"]
