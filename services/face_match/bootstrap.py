"""Builds the face-match core from settings: the one place that chooses implementations."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from identity_crypto.datakeys import DataKeyStore
from identity_crypto.keyring import load_keyring
from identity_crypto.kms import LocalKms
from identity_inference.detector import FaceDetector
from identity_inference.embedder import FaceEmbedder
from identity_inference.pack import (
    detector_manifest,
    embedding_manifest,
    onnx_runner,
    pad_manifests,
)
from identity_inference.pad import PadScorer
from identity_runtime import mesh
from identity_runtime.clients import ClientFactory
from identity_runtime.downstream import service_clients
from identity_runtime.logs import get_logger
from identity_runtime.server import Core
from identity_store.bootstrap import DatabaseAndClockOverrides
from identity_store.db import Database
from identity_store.migrate import require_compatible
from services.face_match.audit import AuditRelay
from services.face_match.bucket import LocalBucket, ObjectStore, S3Store, UploadSigner
from services.face_match.matcher import FaceMatcher
from services.face_match.migrations import HISTORY
from services.face_match.models import DataKey
from services.face_match.oauth import OAuthClients, SigningKeys
from services.face_match.queue import JobQueue
from services.face_match.sealing import ImageSeals
from services.face_match.settings import FaceMatchSettings
from services.face_match.submissions import Submissions
from services.face_match.worker import CallbackRelay, Worker, purge_images

PURGE_EVERY_SECONDS = 60.0

log = get_logger("face_match.background")


@dataclass(frozen=True)
class FaceMatchOverrides(DatabaseAndClockOverrides):
    matcher: FaceMatcher | None = None
    # Start the workers, the callback relay and the purge loop (tests drive them by hand).
    background: bool = True


@dataclass
class FaceMatchCore(Core):
    database: Database
    submissions: Submissions
    queue: JobQueue
    oauth: OAuthClients
    relay: CallbackRelay
    bucket: ObjectStore
    matcher: FaceMatcher
    clients: ClientFactory
    audit: AuditRelay
    workers: list[Worker] = field(default_factory=list)
    result_retention_days: int = 90
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(
        self, poll_seconds: float, clock: Callable[[], datetime], audit_poll_seconds: float
    ) -> None:
        for worker in self.workers:
            self._tasks.append(asyncio.create_task(worker.run(poll_seconds, self._stop)))
        self._tasks.append(asyncio.create_task(self._relay_loop(poll_seconds)))
        self._tasks.append(asyncio.create_task(self._audit_loop(audit_poll_seconds)))
        self._tasks.append(asyncio.create_task(self._purge_loop(clock)))

    async def _relay_loop(self, poll_seconds: float) -> None:
        # Claims into the free slots whenever an attempt ends or a poll has
        # passed; measures the job queue at most once a poll.
        clock = asyncio.get_running_loop().time
        measure_at = 0.0
        while not self._stop.is_set():
            await _logged("callback relay", self.relay.fill)
            if clock() >= measure_at:
                measure_at = clock() + poll_seconds
                await _logged("queue metrics", self.queue.measure)
            await self.relay.pool.wait_freed(poll_seconds, self._stop)

    async def _audit_loop(self, poll_seconds: float) -> None:
        while not self._stop.is_set():
            await _logged("audit relay", self.audit.flush)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), poll_seconds)

    async def _purge_loop(self, clock: Callable[[], datetime]) -> None:
        while not self._stop.is_set():
            await _logged("expiry sweep", self.submissions.expire_due)
            await _logged(
                "result purge",
                lambda: self.submissions.purge_results(self.result_retention_days),
            )
            await _logged("image purge", lambda: purge_images(self.database, self.bucket, clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), PURGE_EVERY_SECONDS)

    async def close(self) -> None:
        self._stop.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.relay.close()
        await self.clients.close()
        self.database.dispose()


async def _logged(step: str, run: Callable[[], Awaitable[object]]) -> None:
    """One round of a background loop: a failure is logged (the step and the
    exception's type, never its message: it may quote a row) and the loop
    goes on to its next round."""
    try:
        await run()
    except Exception as exc:
        log.warning("background step failed", step=step, error=type(exc).__name__)


def build_matcher(settings: FaceMatchSettings) -> FaceMatcher:
    detector = FaceDetector(
        onnx_runner(detector_manifest(settings, settings.detector_model), settings)
    )
    manifest = embedding_manifest(settings, settings.embedding_model)
    embedder = FaceEmbedder(onnx_runner(manifest, settings))
    pad = (
        PadScorer([onnx_runner(m, settings) for m in pad_manifests(settings, settings.pad_models)])
        if settings.pad_models
        else None
    )
    return FaceMatcher(detector, embedder, manifest, settings.review_margin, pad)


def open_store(settings: FaceMatchSettings) -> ObjectStore:
    if settings.storage == "s3":
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path" if settings.s3_path_style else "auto"},
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )
        return S3Store(
            client,
            settings.s3_bucket,
            settings.upload_max_bytes,
            settings.s3_server_side_encryption,
            settings.s3_sse_kms_key_id,
        )
    assert settings.bucket_dir is not None  # validated
    return LocalBucket(settings.bucket_dir, image_seals(settings))


def image_seals(settings: FaceMatchSettings) -> ImageSeals:
    """The data keys of the local bucket's sealed images (sealing.py), wrapped
    by the deployment's key-encryption keys."""
    kms = LocalKms(load_keyring(settings.kek_keyring_file, settings.kek_keyring, "KEK keyring"))
    return ImageSeals(
        DataKeyStore(kms, DataKey, settings.key_cache_size, settings.key_cache_ttl_seconds)
    )


def worker_name(index: int) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{index}"


async def build(
    settings: FaceMatchSettings, *, overrides: FaceMatchOverrides | None = None
) -> FaceMatchCore:
    chosen = overrides or FaceMatchOverrides()
    clock = chosen.clock_or_utcnow()
    keys = SigningKeys.load(settings.oauth_signing_keys_file, settings.oauth_signing_keys)
    database = chosen.open_database(settings)
    await require_compatible(database, HISTORY, "face-match")
    bucket = open_store(settings)
    signer = UploadSigner(
        settings.upload_signing_key, settings.public_base_url, settings.upload_max_bytes
    )
    matcher = (
        chosen.matcher
        if chosen.matcher is not None
        else await asyncio.to_thread(build_matcher, settings)
    )
    clients = service_clients(settings, mesh.FACE_MATCH)
    queue = JobQueue(
        database,
        clock=clock,
        visibility_seconds=settings.job_visibility_seconds,
        max_attempts=settings.job_max_attempts,
        image_retention_days=settings.image_retention_days,
        default_callback_url=settings.default_callback_url,
    )
    core = FaceMatchCore(
        database=database,
        submissions=Submissions(
            database,
            bucket,
            signer,
            clock=clock,
            upload_url_seconds=settings.upload_url_seconds,
            ttl_seconds=settings.submission_ttl_seconds,
            callback_signing_key=settings.callback_signing_key,
            callback_allow_loopback=settings.callback_allow_loopback,
            enqueue_callback=queue.enqueue_callback,
        ),
        queue=queue,
        oauth=OAuthClients(
            database,
            keys,
            pepper=settings.oauth_client_pepper,
            issuer=settings.oauth_issuer,
            token_seconds=settings.oauth_token_seconds,
            clock=clock,
        ),
        relay=CallbackRelay(
            database,
            signing_key=settings.callback_signing_key,
            clock=clock,
            allow_loopback=settings.callback_allow_loopback,
            ca_file=settings.callback_ca_file,
            retry_hours=settings.callback_retry_hours,
        ),
        bucket=bucket,
        matcher=matcher,
        clients=clients,
        audit=AuditRelay(database, clients, clock),
        workers=[Worker(worker_name(i), queue, bucket, matcher) for i in range(settings.workers)],
        result_retention_days=settings.result_retention_days,
    )
    if chosen.background:
        core.start(settings.job_poll_seconds, clock, settings.audit_relay_poll_seconds)
    return core
