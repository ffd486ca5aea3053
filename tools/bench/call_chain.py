#!/usr/bin/env python3
"""CPU of one call through a service's own per-call chain, without gRPC:
caller-token admission, call context, span, error translation, access line,
deadline, validation, rate limit and the servicer, as the server wraps them.

    .venv/bin/python tools/bench/call_chain.py [--calls 3000] [--repeats 7]

Starts the real matching service in-process (port 0, scratch PostgreSQL
schema, JSON access lines at INFO as shipped, written to /dev/null), enrols
a few customers, then calls the wrapped handlers of Verify and
DescribeThreshold directly, with a stand-in for grpc.aio's servicer context
(the caller token in its metadata, no deadline). BENCH_LOG_LEVEL=WARNING
drops the access line. No socket, no HTTP/2, no
(de)serialisation: what is left is this code base's per-call work, which a
busy machine disturbs far less than a loopback benchmark (the best of
`--repeats` rounds of process CPU time is reported). Run it with another
checkout's interpreter (`/path/.venv/bin/python /path/tools/bench/call_chain.py`)
to compare before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

import grpc  # noqa: E402
import numpy as np  # noqa: E402
from common import (  # noqa: E402
    MatchingCustomers,
    caller_metadata,
    matching_env,
    scratch_schema,
)

from identity_platform_api.matching.v1 import matching_pb2, matching_pb2_grpc  # noqa: E402
from identity_runtime import logs, meshauth  # noqa: E402
from identity_runtime.authz import CallerAuthInterceptor  # noqa: E402
from identity_runtime.interceptors import ChainInterceptor, Handler, server_stages  # noqa: E402
from services.matching.bootstrap import MatchingCore  # noqa: E402
from services.matching.service import SPEC as MATCHING  # noqa: E402
from services.matching.settings import MatchingSettings  # noqa: E402
from tests.support import channel, start_service  # noqa: E402
from tests.support.meshauth import trusted_keys_json  # noqa: E402

SERVICE = "/identity.matching.v1.MatchingService/"


class _Context:
    """What the chain asks of grpc.aio's ServicerContext on a successful call."""

    def __init__(self, metadata: Iterable[tuple[str, str]]):
        self._metadata = tuple(metadata)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def time_remaining(self) -> None:
        return None

    def auth_context(self) -> dict[str, Any]:
        return {}

    def code(self) -> None:
        return None

    async def abort(self, code: Any, details: str = "", trailing: Any = None) -> None:
        raise SystemExit(f"the call was refused: {code} {details}")


class _Handlers:
    """Stands in for a grpc.aio server to collect a servicer's method handlers."""

    def __init__(self) -> None:
        self.by_method: dict[str, Handler] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        """The same handlers again (add_registered_method_handlers has them)."""

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        for name, method in handlers.items():
            self.by_method[f"/{service}/{name}"] = method


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    customers = MatchingCustomers.random(np.random.default_rng(3), 50)
    logs.configure(MATCHING.name, "INFO", "json")  # what `serve` does, as shipped
    with scratch_schema() as url:
        server = await start_service(MATCHING, matching_env(url, MATCHING_LOG_FORMAT="json"))
        async with channel(server, credentials=False) as chan:
            await customers.enrol(matching_pb2_grpc.MatchingServiceStub(chan))
        handlers = _Handlers()
        # start() returns once the core is built, from MATCHING's settings class.
        assert isinstance(server.core, MatchingCore)
        assert isinstance(server.settings, MatchingSettings)
        for add, servicer in MATCHING.servicers(server.core, server.settings):
            add(servicer, cast(grpc.aio.Server, handlers))  # the two methods add_X calls
        trusted = meshauth.trusted_keys_from(
            None, trusted_keys_json(), "MATCHING_MESH_TRUSTED_KEYS"
        )
        auth = CallerAuthInterceptor(MATCHING.name, meshauth.TokenVerifier(trusted))
        chain = ChainInterceptor(
            server_stages(
                server.settings.default_deadline_seconds,
                auth,
                service=MATCHING.name,
                rate_limits=server.rate_limits,
                own_rate_limits=MATCHING.own_rate_limits,
            )
        )
        # The chain calls only what _Context has.
        context = cast(grpc.ServicerContext, _Context(caller_metadata(customers.org_id)))
        requests: dict[str, Sequence[Any]] = {
            "Verify": [
                matching_pb2.VerifyRequest(
                    probe=customers.embedding(i), customer_id=customers.customer_id(i)
                )
                for i in range(len(customers.ids))
            ],
            "DescribeThreshold": [matching_pb2.DescribeThresholdRequest()],
        }
        sys.stderr = Path(os.devnull).open("w")  # noqa: ASYNC230 - the access lines: written, not kept
        try:
            for rpc, messages in requests.items():
                method = SERVICE + rpc
                behaviour = chain.served(handlers.by_method[method], method).unary_unary
                assert behaviour is not None  # both RPCs are unary-unary
                for message in messages:  # warm: templates opened, caches filled
                    await behaviour(message, context)
                best = float("inf")
                for _ in range(args.repeats):
                    started = time.process_time()
                    for i in range(args.calls):
                        await behaviour(messages[i % len(messages)], context)
                    best = min(best, time.process_time() - started)
                print(f"{rpc}: {best / args.calls * 1e6:.1f} us of CPU a call", file=sys.__stdout__)
        finally:
            sys.stderr = sys.__stderr__
            await server.stop(0)


if __name__ == "__main__":
    asyncio.run(main())
