"""Builds the kyc-tier core from settings: database, keys, the mesh clients, flows."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from identity_crypto.datakeys import DataKeyStore
from identity_crypto.keyring import load_keyring
from identity_crypto.kms import LocalKms
from identity_runtime.clients import ClientFactory, ClientOptions
from identity_runtime.server import Core
from identity_store.db import Database
from services.kyc_tier import adapters, models
from services.kyc_tier.customers import Customers
from services.kyc_tier.flows import Flows
from services.kyc_tier.migrations import HISTORY
from services.kyc_tier.outbox import OutboxRelay
from services.kyc_tier.partners import PartnerDirectory
from services.kyc_tier.pii import PiiVault
from services.kyc_tier.settings import KycTierSettings


@dataclass
class KycTierCore(Core):
    database: Database
    partners: PartnerDirectory
    clients: ClientFactory
    customers: Customers
    flows: Flows
    relay: OutboxRelay

    async def ready(self) -> tuple[bool, str]:
        from identity_store.migrate import is_at_head

        at_head = await asyncio.to_thread(is_at_head, self.database.url, HISTORY)
        return (
            (True, "database at head")
            if at_head
            else (False, "database schema is not at head: run `identity migrate`")
        )

    async def close(self) -> None:
        await self.relay.stop()
        # Entries queued by the last requests go out before the channels close.
        try:
            async with asyncio.timeout(5):
                await self.relay.flush()
        except Exception:  # noqa: BLE001 - the next start delivers them
            pass
        await self.clients.close()
        self.database.dispose()


async def build(settings: KycTierSettings) -> KycTierCore:
    database = Database(settings.database_url, settings.database_pool_size)
    clients = ClientFactory(
        settings.downstream_addresses(),
        ClientOptions(
            max_message_bytes=settings.max_message_bytes,
            default_timeout_seconds=settings.default_deadline_seconds,
        ),
    )
    kms = LocalKms(load_keyring(settings.kek_keyring_file, settings.kek_keyring, "KEK keyring"))
    vault = PiiVault(
        DataKeyStore(kms, models.DataKey, settings.key_cache_size, settings.key_cache_ttl_seconds),
        settings.pii_index_key,
    )
    relay = OutboxRelay(
        database, adapters.GrpcAuditSink(clients), settings.audit_relay_poll_seconds
    )
    customers = Customers(vault)
    flows = Flows(
        database=database,
        vault=vault,
        customers=customers,
        quality=adapters.GrpcCaptureQuality(clients),
        liveness=adapters.GrpcLiveness(clients),
        embedder=adapters.GrpcEmbedder(clients),
        matcher=adapters.GrpcMatcher(clients),
        relay=relay,
    )
    relay.start()
    return KycTierCore(
        database=database,
        partners=PartnerDirectory(settings.api_key_pepper),
        clients=clients,
        customers=customers,
        flows=flows,
        relay=relay,
    )
