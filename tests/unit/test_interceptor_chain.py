"""The chain runs as one grpc.aio interceptor: each method's handler is
wrapped once and reused, and the standard stages around a unary call run as
one coroutine (`_fused_unary`)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from identity_runtime import interceptors
from identity_runtime.interceptors import ChainInterceptor, _fusable, server_stages


async def _one(request: Any, ctx: Any) -> str:
    return f"one:{request}"


class _Details:
    def __init__(self, method: str) -> None:
        self.method = method


def _intercept(chain: ChainInterceptor, handler: Any, method: str) -> Any:
    async def continuation(_details: Any) -> Any:
        return handler

    return asyncio.run(chain.intercept_service(continuation, _Details(method)))


def test_the_standard_chain_is_fused() -> None:
    fused = _fusable(server_stages(5.0, service="matching"))
    assert fused is not None
    auth, standard, rest = fused
    assert auth is None and len(standard) == 6 and rest == []


def test_a_reordered_chain_is_not_fused() -> None:
    stages = server_stages(5.0, service="matching")
    stages[1], stages[2] = stages[2], stages[1]
    assert _fusable(stages) is None


def test_a_method_is_wrapped_once_and_reused() -> None:
    chain = ChainInterceptor(server_stages(5.0, service="matching"))
    handler = grpc.unary_unary_rpc_method_handler(_one)
    first = _intercept(chain, handler, "/pkg.Service/Call")
    assert first is not handler and first.unary_unary is not _one
    assert _intercept(chain, handler, "/pkg.Service/Call") is first
    # Another handler object for the same method is wrapped anew.
    other = grpc.unary_unary_rpc_method_handler(_one)
    again = _intercept(chain, other, "/pkg.Service/Call")
    assert again is not first and again.unary_unary is not _one


def test_health_calls_skip_the_quiet_stages() -> None:
    chain = ChainInterceptor(server_stages(5.0, service="matching"))
    handler = grpc.unary_unary_rpc_method_handler(_one)
    wrapped = _intercept(chain, handler, "/grpc.health.v1.Health/Check")
    # Still wrapped (call context, errors and deadline hold for every call).
    assert wrapped is not handler


def test_an_unknown_method_stays_unknown() -> None:
    chain = ChainInterceptor(server_stages(5.0, service="matching"))
    assert _intercept(chain, None, "/pkg.Service/Nothing") is None


@pytest.mark.parametrize("fused", [True, False])
def test_fused_and_layered_chains_validate_alike(
    fused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(interceptors, "validate", seen.append)
    stages = server_stages(5.0, service="matching")
    if not fused:
        monkeypatch.setattr(interceptors, "_fusable", lambda _stages: None)
    chain = ChainInterceptor(stages)
    handler = _intercept(chain, grpc.unary_unary_rpc_method_handler(_one), "/pkg.Service/Call")
    assert ("_fused_unary" in handler.unary_unary.__qualname__) is fused

    class _Ctx:
        def invocation_metadata(self) -> tuple[()]:
            return ()

        def time_remaining(self) -> None:
            return None

        def code(self) -> None:
            return None

        def set_trailing_metadata(self, metadata: Any) -> None:
            pass

    assert asyncio.run(handler.unary_unary("x", _Ctx())) == "one:x"
    assert seen == ["x"]
