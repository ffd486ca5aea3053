"""Builds the liveness core from settings: the one place that chooses implementations."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from identity_inference import pack
from identity_inference.pad import PadScorer
from identity_runtime.server import Core
from identity_store.db import Database
from services.liveness.checks import ChallengePolicy, Liveness
from services.liveness.settings import LivenessSettings


@dataclass
class LivenessCore(Core):
    """The liveness service's domain objects."""

    liveness: Liveness

    async def ready(self) -> tuple[bool, str]:
        from identity_store.migrate import is_at_head

        at_head = await asyncio.to_thread(is_at_head, self.liveness.database.url)
        if not at_head:
            return False, "database schema is not at head: run `identity migrate`"
        pad = self.liveness.pad
        if pad is None:
            return (
                True,
                "challenge-only: PAD disabled (LIVENESS_PAD_ENABLED=false), "
                "decisions rest on the flash challenge (one-machine run)",
            )
        return True, f"pad+challenge: {', '.join(pad.model_ids)} (threshold {pad.threshold:.2f})"

    async def close(self) -> None:
        if self.liveness.pad is not None:
            for runner in self.liveness.pad.runners:
                runner.unload()
        self.liveness.database.dispose()


def build_pad(settings: LivenessSettings) -> PadScorer | None:
    """The PAD models (packaged weights, or the operator's copy); None only when disabled."""
    if not settings.pad_enabled:
        return None
    runners = [
        pack.onnx_runner(m, settings, settings.pad_model_dir)
        for m in pack.pad_manifests(settings, settings.pad_models)
    ]
    return PadScorer(runners, settings.pad_threshold)


def policy(settings: LivenessSettings) -> ChallengePolicy:
    return ChallengePolicy(
        ttl_seconds=settings.challenge_ttl_seconds,
        length=settings.challenge_length,
        flash_duration_ms=settings.flash_duration_ms,
        nonce_retention_hours=settings.nonce_retention_hours,
        max_clock_skew_seconds=settings.max_clock_skew_seconds,
        min_flash_response=settings.min_flash_response,
        min_flash_score=settings.min_flash_score,
    )


async def build(settings: LivenessSettings) -> LivenessCore:
    pad = await asyncio.to_thread(build_pad, settings)
    database = Database(settings.database_url, settings.database_pool_size)
    return LivenessCore(liveness=Liveness(database=database, pad=pad, policy=policy(settings)))
