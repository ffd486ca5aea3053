"""Builds the kyc-tier core from settings: database, partner directory, clients."""

from __future__ import annotations

from dataclasses import dataclass

from identity_runtime.clients import ClientFactory, ClientOptions
from identity_runtime.server import Core
from identity_store.db import Database
from services.kyc_tier.partners import PartnerDirectory
from services.kyc_tier.settings import KycTierSettings


@dataclass
class KycTierCore(Core):
    database: Database
    partners: PartnerDirectory
    clients: ClientFactory

    async def ready(self) -> tuple[bool, str]:
        import asyncio

        from identity_store.migrate import is_at_head

        at_head = await asyncio.to_thread(is_at_head, self.database.url)
        return (True, "database at head") if at_head else (False, "database schema is not at head: run `identity migrate`")

    async def close(self) -> None:
        await self.clients.close()
        self.database.dispose()


async def build(settings: KycTierSettings) -> KycTierCore:
    return KycTierCore(
        database=Database(settings.database_url, settings.database_pool_size),
        partners=PartnerDirectory(settings.api_key_pepper),
        clients=ClientFactory(
            settings.downstream_addresses(),
            ClientOptions(
                max_message_bytes=settings.max_message_bytes,
                default_timeout_seconds=settings.default_deadline_seconds,
            ),
        ),
    )
