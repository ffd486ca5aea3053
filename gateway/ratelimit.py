"""Rate limits declared on RPCs with `(identity.common.v1.rate_limit)`, at
the edge: the gateway counts each routed request before calling the service
(`identity_runtime.ratelimit`, which the service applies again to every
caller, gRPC ones included).

The store is `rate_limit_storage`: `memory://` for one gateway, or
`redis://host:port[/db]` shared by every replica. Keys: `per: "org"` counts
per calling organisation; `per: "customer"` per organisation and the
request's `customer_id` (read after the path, body and query are bound);
`per: "ip"` per client address (gateway.client_address: behind
`GATEWAY_TRUSTED_PROXIES`, the forwarded one; IPv6 by /64), counted here
only (a service never sees the address) and the only key an anonymous route
(the console sign-in) can be limited by. An exhausted limit answers 429
RATE_LIMITED with `Retry-After`. If the store cannot be reached the request
is refused with 503 (fail closed).
"""

from __future__ import annotations

from google.protobuf.message import Message

from gateway import errors
from gateway.routing import CUSTOMER_FIELD, Route
from identity_runtime.ratelimit import RateLimited, RateLimits, identifiers


class RateLimiter(RateLimits):
    def identifiers(
        self, route: Route, org_id: str, request: Message, client: str = ""
    ) -> tuple[str, ...]:
        assert route.rate_limit is not None
        customer_id = getattr(request, CUSTOMER_FIELD) if route.rate_limit.per == "customer" else ""
        return identifiers(route.rate_limit, org_id, customer_id, client)

    async def check(self, route: Route, org_id: str, request: Message, client: str = "") -> None:
        """Count this request; RATE_LIMITED when the route's limit is spent."""
        policy = route.rate_limit
        if policy is None:
            return
        try:
            keys = self.identifiers(route, org_id, request, client)
            await self.hit(route.full_name, policy, keys)
        except RateLimited as limited:
            raise errors.rate_limited(policy.text, limited.retry_after_seconds) from None
