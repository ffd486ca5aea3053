"""Failed credentials, counted per client address.

An API key, an OAuth access token, an SDK session token or an OAuth client's
secret refused as unknown (401) counts against the address it came from
(gateway.client_address). Once `GATEWAY_FAILED_CREDENTIALS_PER_5_MIN` have
been refused within five minutes, every credential from that address is
answered 429 RATE_LIMITED with Retry-After, a right one too (a guesser learns
nothing), until the window has room again. Counted in the rate-limit store
(`GATEWAY_RATE_LIMIT_STORAGE`: shared by every replica with redis://). The
secrets are long (160 and 256 bits), so this is about noise and an alert
signal more than about guessing; a store that cannot be reached is logged
and lets the credential be checked as usual (the limits on routes still fail
closed).
"""

from __future__ import annotations

import structlog

from gateway import errors
from identity_runtime.errors import Unavailable
from identity_runtime.ratelimit import RateLimited, RateLimitPolicy, RateLimits, identifiers

log = structlog.get_logger("identity.gateway")

WINDOW_SECONDS = 300
# The key the failures of an address are counted under (no RPC has this name).
COUNTER = "gateway/failed-credentials"


class CredentialThrottle:
    def __init__(self, limits: RateLimits, failures_per_window: int):
        self.limits = limits
        self.policy = (
            RateLimitPolicy(failures_per_window, WINDOW_SECONDS, "ip")
            if failures_per_window > 0
            else None
        )

    async def admit(self, client: str) -> None:
        """RATE_LIMITED when `client`'s failures fill the window."""
        if self.policy is None:
            return
        try:
            await self.limits.check_spent(
                COUNTER, self.policy, identifiers(self.policy, "", "", client)
            )
        except RateLimited as limited:
            log.warning("credentials refused: too many failures from one address")
            raise errors.rate_limited(
                f"{self.policy.requests} failed credentials per {WINDOW_SECONDS} seconds "
                "per address",
                limited.retry_after_seconds,
            ) from None
        except Unavailable:
            return  # logged by the store; the credential is checked as usual

    async def failed(self, client: str) -> None:
        """Count one refused credential from `client`."""
        if self.policy is None:
            return
        try:
            await self.limits.hit(COUNTER, self.policy, identifiers(self.policy, "", "", client))
        except (RateLimited, Unavailable):
            return  # already full, or the store is down (logged there)
