"""Failed credentials, counted per client address.

An API key, an OAuth access token, an SDK session token or an OAuth client's
secret refused as unknown (401) counts against the address it came from
(gateway.client_address). Once `GATEWAY_FAILED_CREDENTIALS_PER_5_MIN` have
been refused within five minutes, the address's further refusals are
answered 429 RATE_LIMITED with Retry-After instead of 401, and logged: a
client that keeps sending bad or revoked credentials is told to back off,
and operators see it.

A right credential is never throttled: behind a proxy that is not in
`GATEWAY_TRUSTED_PROXIES` every client shares the proxy's address, and one
partner's revoked key (or anyone's noise) must not lock out everyone else.
The secrets are long (160 and 256 bits), so guessing is not what this is
about. Counted in the rate-limit store (`GATEWAY_RATE_LIMIT_STORAGE`:
shared by every replica with redis://); a store that cannot be reached is
logged and the 401 stands.
"""

from __future__ import annotations

import structlog

from gateway import errors
from identity_runtime.errors import DomainError, Unavailable
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

    async def failed(self, client: str) -> DomainError | None:
        """Count one refused credential from `client`; the 429 to answer
        instead of the 401 once its failures fill the window (None: the 401)."""
        if self.policy is None:
            return None
        try:
            await self.limits.hit(COUNTER, self.policy, identifiers(self.policy, "", "", client))
        except RateLimited as limited:
            log.warning("credentials refused: too many failures from one address")
            return errors.rate_limited(
                f"{self.policy.requests} failed credentials per {WINDOW_SECONDS} seconds "
                "per address",
                limited.retry_after_seconds,
            )
        except Unavailable:
            pass  # logged by the store; the 401 stands
        return None
