"""Builds the matching core from settings: the one place that chooses implementations."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

import faiss

from identity_crypto.datakeys import DataKeyStore
from identity_crypto.keyring import load_keyring
from identity_crypto.kms import KeyEncryptionService, LocalKms
from identity_runtime.tasks import cancel_and_wait
from identity_store.bootstrap import DatabaseOverrides, StoredCore
from identity_store.migrate import require_compatible
from identity_store.retention import PeriodicSweep
from services.matching import models
from services.matching.calibration import load_calibrations
from services.matching.contract import EmbeddingContract, resolve_profile
from services.matching.engine import MatchingEngine
from services.matching.enrollments import EnrollmentStore
from services.matching.gallery import Gallery, OrgGallery
from services.matching.migrations import HISTORY
from services.matching.opened import OpenedTemplates
from services.matching.retention import MatchingSweeper
from services.matching.settings import MatchingSettings


@dataclass(frozen=True)
class MatchingOverrides(DatabaseOverrides):
    # Wraps and unwraps the template data keys (a cloud KMS or HSM in production).
    kms: KeyEncryptionService | None = None
    # The in-memory 1:N index.
    gallery: Gallery | None = None


@dataclass(kw_only=True)
class MatchingCore(StoredCore):
    engine: MatchingEngine
    sync_task: asyncio.Task | None = None

    async def stop_work(self) -> None:
        await cancel_and_wait(self.sync_task)


def build_kms(settings: MatchingSettings) -> KeyEncryptionService:
    # The seam for a cloud KMS or HSM: add a Literal value to `kms` and build
    # its client here; nothing else changes.
    return LocalKms(load_keyring(settings.kek_keyring_file, settings.kek_keyring, "KEK keyring"))


def build_gallery(settings: MatchingSettings) -> Gallery:
    return Gallery(
        functools.partial(
            OrgGallery,
            settings.dimension,
            settings.index_kind,
            settings.ivf_min_gallery_size,
            settings.ivf_nprobe,
            settings.rerank_factor,
        )
    )


async def build(
    settings: MatchingSettings, *, overrides: MatchingOverrides | None = None
) -> MatchingCore:
    chosen = overrides or MatchingOverrides()
    database = chosen.open_database(settings)
    await require_compatible(database, HISTORY, "matching")
    faiss.omp_set_num_threads(settings.search_threads)
    contract = EmbeddingContract(settings.model_id, settings.model_version, settings.dimension)
    profile = resolve_profile(
        contract,
        settings.default_threshold,
        load_calibrations(settings.calibration_dir),
        settings.min_threshold,
        settings.max_threshold,
    )
    keys = DataKeyStore(
        chosen.kms or build_kms(settings),
        models.DataKey,
        settings.key_cache_size,
        settings.key_cache_ttl_seconds,
    )
    engine = MatchingEngine(
        database=database,
        store=EnrollmentStore(keys, contract, settings.template_format),
        gallery=chosen.gallery or build_gallery(settings),
        profile=profile,
        templates=OpenedTemplates(
            settings.template_cache_size, settings.template_cache_ttl_seconds
        ),
    )
    # The gallery is complete before the service reports SERVING.
    await engine.rebuild()
    core = MatchingCore(database=database, engine=engine)
    core.retention = PeriodicSweep(
        MatchingSweeper(database, batch=settings.retention_batch_size).sweep,
        settings.retention_sweep_interval_seconds,
        "matching-retention",
    )
    core.retention.start()
    core.sync_task = asyncio.create_task(engine.run_sync(settings.sync_interval_seconds))
    return core
