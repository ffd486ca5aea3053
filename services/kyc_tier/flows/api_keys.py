"""Partner API keys: issued, listed and revoked per organisation (each
audited), and checked by the gateway on every request (AuthenticateApiKey,
internal; the first use in each minute audited). The gateway also asks for
the revocation epoch, at most once a second, to drop cached keys."""

from __future__ import annotations

from dataclasses import dataclass

from identity_runtime.errors import invalid_field
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
            lambda s: self.directory.create_api_key(s, org_id, name, scopes)
        )
        return IssuedApiKey(record, secret)

    async def revoke(self, org_id: str, api_key_id: str) -> ApiKeyRecord:
        if not api_key_id:
            raise invalid_field("api_key_id", "is required")
        return await self.store.write(
            lambda s: self.directory.revoke_api_key(s, org_id, api_key_id)
        )

    async def revocation_epoch(self) -> int:
        return await self.store.read(self.directory.revocation_epoch)

    async def authenticate(self, secret: str) -> Caller:
        # A write: last_used_at is refreshed, and the use audited, at most once a minute.
        return await self.store.write(lambda s: self.directory.authenticate(s, secret))
