"""Rate limits declared on RPCs with `(identity.common.v1.rate_limit)`.

Counted with the `limits` library's moving window (exact: no burst at window
edges) in `rate_limit_storage`:

- `memory://` counts in this process: right for one gateway;
- `redis://host:port[/db]` counts in Redis, atomically (a Lua script per
  hit), so several gateway replicas enforce one limit together.

Keys: `per: "org"` counts per calling organisation; `per: "customer"` per
organisation and the request's `customer_id` (read after the path, body and
query are bound); `per: "ip"` per client address (gateway.client_address:
behind `GATEWAY_TRUSTED_PROXIES`, the forwarded one; IPv6 by /64), the only
key an anonymous route (the console sign-in) can be limited by. An
exhausted limit answers 429 RATE_LIMITED with `Retry-After`. If the store
cannot be reached the request is refused with 503 (fail closed): these limits
guard biometric checks and sign-in against brute force.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

from google.protobuf.message import Message
from limits import RateLimitItemPerSecond
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import StorageTypes, storage_from_string

from gateway import errors
from gateway.routing import CUSTOMER_FIELD, Route
from identity_runtime.logs import get_logger

log = get_logger("identity.gateway.ratelimit")
_PLAIN_ID = re.compile(r"[A-Za-z0-9_\-.:]{0,128}")


def _storage_uri(url: str) -> tuple[str, dict[str, Any]]:
    scheme, _, rest = url.partition("://")
    if scheme == "memory":
        return "async+memory://", {}
    return f"async+{scheme}://{rest}", {"implementation": "redispy"}


def _identifier(value: str) -> str:
    """Ids go into store keys as they are when plain, hashed otherwise."""
    if _PLAIN_ID.fullmatch(value):
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


class RateLimiter:
    def __init__(self, storage_url: str, key_prefix: str):
        self.storage_url = storage_url
        self.key_prefix = key_prefix
        self._limiter: MovingWindowRateLimiter | None = None
        self._storage: StorageTypes | None = None

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

    def identifiers(
        self, route: Route, org_id: str, request: Message, client: str = ""
    ) -> tuple[str, ...]:
        assert route.rate_limit is not None
        if route.rate_limit.per == "ip":
            return ("ip", _identifier(client))
        if route.rate_limit.per == "customer":
            return (
                "org",
                _identifier(org_id),
                "customer",
                _identifier(getattr(request, CUSTOMER_FIELD)),
            )
        return ("org", _identifier(org_id))

    async def check(self, route: Route, org_id: str, request: Message, client: str = "") -> None:
        """Count this request; RATE_LIMITED when the route's limit is spent."""
        policy = route.rate_limit
        if policy is None:
            return
        item = RateLimitItemPerSecond(
            policy.requests, policy.per_seconds, namespace=route.full_name
        )
        identifiers = self.identifiers(route, org_id, request, client)
        limiter = self._ensure()
        try:
            if await limiter.hit(item, *identifiers):
                return
            stats = await limiter.get_window_stats(item, *identifiers)
        except Exception as exc:  # noqa: BLE001 - any store failure: refuse, do not guess
            log.error("rate-limit store failed", error_type=type(exc).__name__, rpc=route.full_name)
            raise errors.GatewayError(
                "UNAVAILABLE",
                "DEPENDENCY_UNAVAILABLE",
                "the rate-limit store is unavailable; retry later",
                {"service": "rate-limit-store"},
            ) from None
        raise errors.rate_limited(policy.text, stats.reset_time - time.time())

    async def check_store(self) -> None:
        """Raise when the store cannot be reached (start-up check)."""
        limiter = self._ensure()
        if not await limiter.storage.check():
            raise ConnectionError(
                f"rate-limit store {self.storage_url.partition('://')[0]}:// is not reachable"
            )

    async def close(self) -> None:
        storage, self._storage, self._limiter = self._storage, None, None
        if storage is None:
            return
        timer = getattr(storage, "timer", None)  # the memory store's expiry task
        if timer is not None and not timer.done():
            timer.cancel()
        bridge = getattr(storage, "bridge", None)
        client = getattr(bridge, "storage", None) if bridge is not None else None
        close = getattr(client, "aclose", None) or getattr(client, "close", None)
        if close is not None:
            result = close()
            if hasattr(result, "__await__"):
                await result
