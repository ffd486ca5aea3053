"""Partner API keys: issued and listed per organisation, and checked by the
gateway on every request (AuthenticateApiKey, internal)."""

from __future__ import annotations

from dataclasses import dataclass

from services.kyc_tier.partners import ApiKeyRecord, Caller, PartnerDirectory
from services.kyc_tier.store import Store


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKeyRecord
    # The key itself: shown once, only its peppered hash is kept.
    secret: str


@dataclass
class ApiKeyFlow:
    store: Store
    directory: PartnerDirectory

    async def list(self, org_id: str) -> list[ApiKeyRecord]:
        return await self.store.read(lambda s: self.directory.list_api_keys(s, org_id))

    async def create(self, org_id: str, name: str, scopes: tuple[str, ...]) -> IssuedApiKey:
        record, secret = await self.store.write(
            lambda s: self.directory.create_api_key(s, org_id, name, scopes), audited=False
        )
        return IssuedApiKey(record, secret)

    async def authenticate(self, secret: str) -> Caller:
        # A write (last_used_at is refreshed at most once a minute), not audited.
        return await self.store.write(
            lambda s: self.directory.authenticate(s, secret), audited=False
        )
