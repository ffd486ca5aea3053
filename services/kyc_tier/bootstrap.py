"""The composition root of kyc-tier: the database, keys, the mesh clients and
the flows, built from settings. Tests hand in fakes for the ports through
`KycTierOverrides` (see tests/support/kyc_fakes.py)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta

from identity_crypto.datakeys import DataKeyStore
from identity_crypto.keyring import load_keyring
from identity_crypto.kms import LocalKms
from identity_runtime import mesh
from identity_runtime.clients import ClientFactory
from identity_runtime.downstream import service_clients
from identity_runtime.egress import GuardedPoster
from identity_runtime.server import Core
from identity_store.db import Database
from identity_store.types import utcnow
from services.kyc_tier import adapters, models
from services.kyc_tier.console import ConsoleAuth, LoginPolicy
from services.kyc_tier.console_admin import ConsoleAdmin
from services.kyc_tier.console_passkeys import Passkeys
from services.kyc_tier.console_users import ConsoleUsers
from services.kyc_tier.console_webauthn import RelyingParty
from services.kyc_tier.customers import Customers
from services.kyc_tier.flows.api_keys import ApiKeyFlow
from services.kyc_tier.flows.customers import CustomerFlow
from services.kyc_tier.flows.dashboard import DashboardFlow
from services.kyc_tier.flows.devices import Challenges, DeviceFlow
from services.kyc_tier.flows.dukcapil import DukcapilFlow
from services.kyc_tier.flows.erasure import ErasureFlow
from services.kyc_tier.flows.face import FaceFlow
from services.kyc_tier.flows.face_matching import FaceMatching
from services.kyc_tier.flows.ktp import KtpFlow
from services.kyc_tier.flows.kyc import KycFlow
from services.kyc_tier.flows.pipeline import CapturePipeline
from services.kyc_tier.flows.prechecks import CheckedLiveness
from services.kyc_tier.flows.promotion import PromotionPolicy
from services.kyc_tier.flows.reviews import ReviewFlow
from services.kyc_tier.flows.sdk_sessions import SdkSessionFlow
from services.kyc_tier.flows.step_up import StepUpFlow
from services.kyc_tier.idempotency import IdempotentRequests
from services.kyc_tier.mapping.captures import ProtoBundleCodec
from services.kyc_tier.migrations import HISTORY
from services.kyc_tier.org_settings import OrgSettingsFlow
from services.kyc_tier.outbox import AuditSink, OutboxRelay
from services.kyc_tier.partners import PartnerDirectory
from services.kyc_tier.pii import PiiVault
from services.kyc_tier.ports import (
    BundleCodec,
    CaptureQuality,
    Clock,
    Embedder,
    Matcher,
)
from services.kyc_tier.recovery import (
    ErasedReviews,
    ErasureBacklog,
    LegacyNikIndex,
    RecoveryWorker,
    StaleAttempts,
)
from services.kyc_tier.retention import KycSweeper, retention_pass
from services.kyc_tier.sdk_sessions import SdkSessions
from services.kyc_tier.settings import KycTierSettings
from services.kyc_tier.store import Store
from services.kyc_tier.webhook_changes import WebhookChanges
from services.kyc_tier.webhook_log import DeliveryLog
from services.kyc_tier.webhook_outbox import Dispatcher
from services.kyc_tier.webhook_targets import Sender
from services.kyc_tier.webhooks import WebhookFlow


@dataclass(frozen=True)
class KycTierOverrides:
    """Ports to use instead of the real ones; None builds the real one from settings."""

    quality: CaptureQuality | None = None
    liveness: CheckedLiveness | None = None
    embedder: Embedder | None = None
    matcher: Matcher | None = None
    audit_sink: AuditSink | None = None
    bundle_codec: BundleCodec | None = None
    clock: Clock | None = None


@dataclass
class KycTierCore(Core):
    database: Database
    clients: ClientFactory
    relay: OutboxRelay
    vault: PiiVault
    api_keys: ApiKeyFlow
    customers: CustomerFlow
    erasure: ErasureFlow
    recovery: RecoveryWorker
    retention: RecoveryWorker
    devices: DeviceFlow
    ktp: KtpFlow
    face: FaceFlow
    step_up: StepUpFlow
    dukcapil: DukcapilFlow
    kyc: KycFlow
    reviews: ReviewFlow
    console: ConsoleAuth
    console_users: ConsoleUsers
    console_admin: ConsoleAdmin
    dashboard: DashboardFlow
    passkeys: Passkeys
    webhooks: WebhookFlow
    dispatcher: Dispatcher
    webhook_log: DeliveryLog
    sdk_sessions: SdkSessionFlow
    idempotency: IdempotentRequests
    org_settings: OrgSettingsFlow
    webhook_changes: WebhookChanges

    async def ready(self) -> tuple[bool, str]:
        from identity_store.compat import schema_problem

        problem = await asyncio.to_thread(schema_problem, self.database.url, HISTORY)
        return (False, f"database schema: {problem}") if problem else (True, "database schema ok")

    async def close(self) -> None:
        await self.dispatcher.stop()
        await self.recovery.stop()
        await self.retention.stop()
        await self.relay.stop()
        # Entries queued by the last requests go out before the channels close;
        # whatever does not, the next start delivers.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self.relay.flush()
        await self.clients.close()
        self.database.dispose()


def _promotion(settings: KycTierSettings) -> PromotionPolicy:
    return PromotionPolicy(
        settings.step_up_promotion,
        settings.step_up_promotion_margin,
        timedelta(days=settings.step_up_promotion_window_days),
    )


def _vault(settings: KycTierSettings) -> PiiVault:
    kms = LocalKms(load_keyring(settings.kek_keyring_file, settings.kek_keyring, "KEK keyring"))
    return PiiVault(
        DataKeyStore(kms, models.DataKey, settings.key_cache_size, settings.key_cache_ttl_seconds),
        settings.pii_index_key,
    )


async def build(
    settings: KycTierSettings, *, overrides: KycTierOverrides | None = None
) -> KycTierCore:
    chosen = overrides or KycTierOverrides()
    database = Database(settings.database_url, settings.database_pool_size)
    clients = service_clients(settings, mesh.KYC_TIER)
    vault = _vault(settings)
    relay = OutboxRelay(
        database,
        chosen.audit_sink or adapters.GrpcAuditSink(clients),
        settings.audit_relay_poll_seconds,
        settings.audit_relay_gather_seconds,
    )
    store = Store(database, relay)
    quality = chosen.quality or adapters.GrpcCaptureQuality(clients)
    liveness = chosen.liveness or adapters.GrpcLiveness(clients)
    embedder = chosen.embedder or adapters.GrpcEmbedder(clients)
    matcher = chosen.matcher or adapters.GrpcMatcher(clients)
    clock = chosen.clock or utcnow
    pipeline = CapturePipeline(store, vault, clock)
    challenges = Challenges(store, liveness)
    matching = FaceMatching(quality, embedder, matcher)
    customers = Customers(vault, clock)
    erasure = ErasureFlow(store, vault, matcher, liveness, clock)
    console = ConsoleAuth(
        store,
        settings.api_key_pepper,
        LoginPolicy(
            max_failures=settings.console_login_max_failures,
            lockout_seconds=settings.console_lockout_seconds,
            session_seconds=settings.console_session_seconds,
        ),
        clock,
    )
    relying_party = RelyingParty(
        settings.webauthn_rp_id,
        settings.webauthn_rp_name,
        tuple(o.strip() for o in settings.webauthn_origins.split(",") if o.strip()),
        settings.webauthn_challenge_seconds,
    )
    webhook_flow = WebhookFlow(
        store,
        vault.keys,
        Sender(
            GuardedPoster(
                settings.webhook_allow_loopback,
                settings.webhook_timeout_seconds,
                settings.webhook_ca_file,
            )
        ),
    )
    core = KycTierCore(
        database=database,
        clients=clients,
        relay=relay,
        vault=vault,
        api_keys=ApiKeyFlow(store, PartnerDirectory(settings.api_key_pepper)),
        customers=CustomerFlow(store, customers),
        erasure=erasure,
        # At start-up, then periodically: unfinished erasures carried on,
        # attempts a crash left "started" finished as interrupted, NIKs
        # hashed before the hash was bound to the organisation re-indexed.
        recovery=RecoveryWorker(
            (
                erasure.resume_pending,
                StaleAttempts(store, clock).sweep,
                ErasedReviews(store, clock).sweep,
                ErasureBacklog(store, clock).measure,
                LegacyNikIndex(store, vault).sweep,
            ),
            settings.recovery_interval_seconds,
        ),
        retention=RecoveryWorker(
            (retention_pass(KycSweeper(database, clock, settings.retention_batch_size), relay),),
            settings.retention_sweep_interval_seconds,
        ),
        devices=DeviceFlow(store, liveness),
        ktp=KtpFlow(
            pipeline, challenges, vault, customers, quality, liveness, embedder, matcher, clock
        ),
        face=FaceFlow(
            pipeline,
            challenges,
            vault,
            quality,
            liveness,
            matching,
            chosen.bundle_codec or ProtoBundleCodec(),
        ),
        step_up=StepUpFlow(pipeline, quality, liveness, matching, _promotion(settings)),
        dukcapil=DukcapilFlow(pipeline, vault, clock, matching),
        kyc=KycFlow(store),
        reviews=ReviewFlow(store, matcher),
        console=console,
        console_users=ConsoleUsers(store, clock),
        console_admin=ConsoleAdmin(store, clock),
        dashboard=DashboardFlow(store, vault, chosen.bundle_codec or ProtoBundleCodec(), quality),
        passkeys=Passkeys(store, console, relying_party, clock),
        webhooks=webhook_flow,
        webhook_log=DeliveryLog(store),
        idempotency=IdempotentRequests(store, vault.keys, clock),
        dispatcher=Dispatcher(
            webhook_flow, settings.webhook_disable_after, settings.webhook_poll_seconds
        ),
        sdk_sessions=SdkSessionFlow(
            store,
            SdkSessions(
                PartnerDirectory(settings.api_key_pepper), settings.sdk_session_max_seconds
            ),
        ),
        org_settings=OrgSettingsFlow(store, vault, matcher),
        webhook_changes=WebhookChanges(store, settings.webhook_allow_loopback),
    )
    relay.start()
    core.recovery.start()
    core.retention.start()
    core.dispatcher.start()
    return core
