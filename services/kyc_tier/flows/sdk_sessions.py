"""Browser SDK sessions and origins (services/kyc_tier/sdk_sessions.py holds
the rules): each call is one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from identity_runtime import context
from services.kyc_tier import sdk_sessions
from services.kyc_tier.paging import Page
from services.kyc_tier.sdk_sessions import MintedSession, ResolvedSession, SdkSessionRecord
from services.kyc_tier.store import Store


@dataclass
class SdkSessionFlow:
    store: Store
    rules: sdk_sessions.SdkSessions

    async def create(self, org_id: str, customer_id: str, ttl_seconds: int) -> MintedSession:
        actor = context.actor()
        return await self.store.write(
            lambda s: self.rules.create(s, org_id, customer_id, ttl_seconds, actor)
        )

    async def revoke(self, org_id: str, session_id: str) -> SdkSessionRecord:
        return await self.store.write(lambda s: self.rules.revoke(s, org_id, session_id))

    async def list_for_customer(
        self, org_id: str, customer_id: str, page_size: int, page_token: str
    ) -> Page[SdkSessionRecord]:
        return await self.store.read(
            lambda s: self.rules.list_for_customer(s, org_id, customer_id, page_size, page_token)
        )

    async def authenticate(self, token: str) -> ResolvedSession:
        return await self.store.read(lambda s: self.rules.authenticate(s, token))

    async def set_origins(self, org_id: str, origins: list[str]) -> tuple[str, ...]:
        return await self.store.write(lambda s: sdk_sessions.set_origins(s, org_id, origins))

    async def origin_allowed(self, origin: str) -> bool:
        return await self.store.read(lambda s: sdk_sessions.origin_allowed(s, origin))
