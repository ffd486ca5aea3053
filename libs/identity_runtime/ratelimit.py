"""Rate limits declared on RPCs with `(identity.common.v1.rate_limit)`,
enforced where the RPC is served and at the gateway alike.

Counted with the `limits` library's moving window (exact: no burst at window
edges) in a store given by URL:

- `memory://` counts in this process (`MemoryWindows`): right for one replica;
- `redis://host:port[/db]` counts in Redis, atomically (a Lua script per
  hit), so several replicas enforce one limit together.

Keys: `per: "org"` counts per calling organisation; `per: "customer"` per
organisation and the request's `customer_id`. An exhausted limit is
RESOURCE_EXHAUSTED / RATE_LIMITED with `retry_after_seconds` and `limit` in
the metadata. If the store cannot be reached the call is refused with
UNAVAILABLE (fail closed): these limits guard biometric checks against brute
force.

`RateLimitInterceptor` (in every service's chain, `server_stages`)
applies the limits of the RPCs a service serves to every caller, over gRPC
directly or through the gateway; the gateway also counts its routes (in its
own store namespace) so a partner is refused at the edge, before the call.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor
from limits import RateLimitItemPerSecond
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import StorageTypes, storage_from_string

from identity_platform_api.common.v1 import options_pb2
from identity_runtime import context as call_context
from identity_runtime import descriptors
from identity_runtime.errors import ResourceExhausted, Unavailable
from identity_runtime.logs import get_logger

log = get_logger("identity.ratelimit")
_PLAIN_ID = re.compile(r"[A-Za-z0-9_\-.:]{0,128}")
CUSTOMER_FIELD = "customer_id"
SCHEMES = ("memory", "redis")


@dataclass(frozen=True)
class RateLimitPolicy:
    requests: int
    per_seconds: int
    # "customer", "org" or "ip" (the client's address: counted by the gateway
    # alone, which sees it; anonymous routes too).
    per: str

    @property
    def text(self) -> str:
        unit = "second" if self.per_seconds == 1 else f"{self.per_seconds} seconds"
        if self.per_seconds == 60:
            unit = "minute"
        return f"{self.requests} per {unit} per {self.per}"


def declared_policy(method: MethodDescriptor) -> RateLimitPolicy | None:
    """The RPC's `rate_limit` option, as declared (the gateway checks it at start-up)."""
    options = method.GetOptions()
    if not options.HasExtension(options_pb2.rate_limit):
        return None
    declared = options.Extensions[options_pb2.rate_limit]
    return RateLimitPolicy(declared.requests, declared.per_seconds, declared.per)


class RateLimited(ResourceExhausted):
    def __init__(self, limit: str, retry_after: float):
        self.retry_after_seconds = max(1, math.ceil(retry_after))
        super().__init__(
            f"rate limit of {limit} reached; retry after {self.retry_after_seconds}s",
            "RATE_LIMITED",
            {"retry_after_seconds": self.retry_after_seconds, "limit": limit},
        )


def _storage_uri(url: str) -> tuple[str, dict[str, Any]]:
    scheme, _, rest = url.partition("://")
    return f"async+{scheme}://{rest}", {"implementation": "redispy"}


class MemoryWindows:
    """`memory://`: the moving windows of this process, as the `limits`
    library's moving window counts them (a hit is allowed while fewer than
    `limit` hits of the key fall in the last `seconds`).

    Each key keeps its hit times, oldest first; a key's expired times are
    dropped when it is hit, and every key is swept at most every
    `SWEEP_SECONDS` (a key whose window holds no hit is forgotten), so a hit
    costs O(1) amortised. (The library's async memory store ran an expiry pass
    on every hit that handed each key in the store to a worker thread: its
    cost grew with the number of customers.) Plain code on the event loop:
    nothing awaits between reading a window and adding to it.
    """

    SWEEP_SECONDS = 10.0

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        # key -> (its window in seconds, the times of its hits in the window)
        self._windows: dict[str, tuple[int, deque[float]]] = {}
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._windows)

    def hit(self, key: str, limit: int, seconds: int) -> bool:
        now = self.clock()
        self._sweep(now)
        _, times = self._windows.setdefault(key, (seconds, deque()))
        _expire(times, now - seconds)
        if len(times) >= limit:
            return False
        times.append(now)
        return True

    def reset_time(self, key: str, seconds: int) -> float:
        """When the oldest hit of the key's window leaves it."""
        now = self.clock()
        _, times = self._windows.get(key, (seconds, deque()))
        _expire(times, now - seconds)
        return (times[0] if times else now) + seconds

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.SWEEP_SECONDS
        for key, (seconds, times) in list(self._windows.items()):
            _expire(times, now - seconds)
            if not times:
                del self._windows[key]


def _expire(times: deque[float], cutoff: float) -> None:
    while times and times[0] < cutoff:
        times.popleft()


def _identifier(value: str) -> str:
    """Ids go into store keys as they are when plain, hashed otherwise."""
    if _PLAIN_ID.fullmatch(value):
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def identifiers(
    policy: RateLimitPolicy, org_id: str, customer_id: str, client: str = ""
) -> tuple[str, ...]:
    if policy.per == "ip":
        return ("ip", _identifier(client))
    if policy.per == "customer":
        return ("org", _identifier(org_id), "customer", _identifier(customer_id))
    return ("org", _identifier(org_id))


class RateLimits:
    """Counters in one store (`memory://` or `redis://...`) under `key_prefix`."""

    def __init__(self, storage_url: str, key_prefix: str):
        self.storage_url = storage_url
        self.key_prefix = key_prefix
        self._limiter: MovingWindowRateLimiter | None = None
        self._storage: StorageTypes | None = None
        self._memory = MemoryWindows() if storage_url.startswith("memory://") else None

    def _ensure(self) -> MovingWindowRateLimiter:
        # Created on first use, inside the running event loop (async clients
        # bind to it).
        if self._limiter is None:
            uri, options = _storage_uri(self.storage_url)
            self._storage = storage_from_string(
                uri, wrap_exceptions=True, key_prefix=self.key_prefix, **options
            )
            self._limiter = MovingWindowRateLimiter(self._storage)
        return self._limiter

    async def hit(self, name: str, policy: RateLimitPolicy, keys: tuple[str, ...]) -> None:
        """Count one call of RPC `name`; RateLimited when its limit is spent."""
        if self._memory is not None:
            key = "/".join((name, *keys, f"{policy.requests}/{policy.per_seconds}"))
            if self._memory.hit(key, policy.requests, policy.per_seconds):
                return
            reset = self._memory.reset_time(key, policy.per_seconds)
            raise RateLimited(policy.text, reset - self._memory.clock())
        item = RateLimitItemPerSecond(policy.requests, policy.per_seconds, namespace=name)
        limiter = self._ensure()
        try:
            if await limiter.hit(item, *keys):
                return
            stats = await limiter.get_window_stats(item, *keys)
        except Exception as exc:  # noqa: BLE001 - any store failure: refuse, do not guess
            log.error("rate-limit store failed", error_type=type(exc).__name__, rpc=name)
            raise Unavailable(
                "the rate-limit store is unavailable; retry later",
                "DEPENDENCY_UNAVAILABLE",
                {"service": "rate-limit-store"},
            ) from None
        raise RateLimited(policy.text, stats.reset_time - time.time())

    async def check_store(self) -> None:
        """Raise when the store cannot be reached (start-up check)."""
        if self._memory is not None:
            return
        limiter = self._ensure()
        if not await limiter.storage.check():
            raise ConnectionError(
                f"rate-limit store {self.storage_url.partition('://')[0]}:// is not reachable"
            )

    async def close(self) -> None:
        storage, self._storage, self._limiter = self._storage, None, None
        if storage is None:
            return
        bridge = getattr(storage, "bridge", None)
        client = getattr(bridge, "storage", None) if bridge is not None else None
        close = getattr(client, "aclose", None) or getattr(client, "close", None)
        if close is not None:
            result = close()
            if hasattr(result, "__await__"):
                await result


def _policies() -> dict[str, tuple[str, RateLimitPolicy]]:
    """ "/pkg.Service/Method" -> (full name, policy), for every declared limit."""
    found = {}
    for service in descriptors.services():
        for method in service.methods:
            policy = declared_policy(method)
            # Per-address limits are the gateway's: a service never sees the
            # client's address (counted here, every sign-in would share one key).
            if policy is not None and policy.per != "ip":
                found[f"/{service.full_name}/{method.name}"] = (
                    f"{service.full_name}/{method.name}",
                    policy,
                )
    return found


class RateLimitInterceptor(grpc.aio.ServerInterceptor):
    """Counts each call of an RPC with a `rate_limit` for the caller's
    organisation (and the request's customer); runs inside ErrorInterceptor,
    after validation, so a refusal is RESOURCE_EXHAUSTED / RATE_LIMITED."""

    def __init__(self, limits: RateLimits, own: frozenset[str] = frozenset()):
        self.limits = limits
        self.policies = {k: v for k, v in _policies().items() if v[0] not in own}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return self.wrap(handler, handler_call_details.method)

    # As a stage of identity_runtime.interceptors.ChainInterceptor.
    skips_infrastructure = False

    def wrap(self, handler: Any, method: str) -> Any:
        """`handler` counting each call against the RPC's declared limit."""
        from identity_runtime.interceptors import _rebuilt

        declared = self.policies.get(method)
        if declared is None or handler.unary_unary is None:
            return handler
        name, policy = declared
        limits = self.limits

        def single(inner: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def behaviour(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
                customer_id = str(getattr(request, CUSTOMER_FIELD, ""))
                keys = identifiers(policy, call_context.org_id() or "", customer_id)
                await limits.hit(name, policy, keys)
                return await inner(request, ctx)

            return behaviour

        return _rebuilt(handler, by_request=(single, single))
