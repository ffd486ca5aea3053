"""Builds the liveness core from settings: the one place that chooses implementations."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from identity_inference import pack
from identity_inference.pad import PadScorer
from identity_runtime.convert import same_named
from identity_store.bootstrap import DatabaseAndClockOverrides, StoredCore
from identity_store.compat import schema_problem
from identity_store.retention import PeriodicSweep
from services.liveness.checks import ChallengePolicy, Liveness
from services.liveness.migrations import HISTORY
from services.liveness.policy import PadPolicies
from services.liveness.retention import LivenessSweeper
from services.liveness.settings import LivenessSettings


@dataclass(frozen=True)
class LivenessOverrides(DatabaseAndClockOverrides):
    # The PAD models (the real one may itself be absent: challenge-only).
    pad: PadScorer | None = None


@dataclass(kw_only=True)
class LivenessCore(StoredCore):
    """The liveness service's domain objects."""

    liveness: Liveness

    async def ready(self) -> tuple[bool, str]:
        problem = await asyncio.to_thread(schema_problem, self.liveness.database.url, HISTORY)
        if problem:
            return False, f"liveness: {problem}"
        pad = self.liveness.pad
        if pad is None:
            return (
                True,
                "challenge-only: PAD disabled (LIVENESS_PAD_ENABLED=false), "
                "decisions rest on the flash challenge (one-machine run)",
            )
        return True, f"pad+challenge: {', '.join(pad.model_ids)} (threshold {pad.threshold:.2f})"

    async def stop_work(self) -> None:
        for scorer in (self.liveness.pad, self.liveness.shadow):
            if scorer is not None:
                for runner in scorer.runners:
                    runner.unload()
        if self.liveness.policies is not None:
            for runner in self.liveness.policies.pinnable:
                runner.unload()


def build_pad(settings: LivenessSettings) -> PadScorer | None:
    """The PAD models (packaged weights, or the operator's copy); None only when disabled."""
    if not settings.pad_enabled:
        return None
    runners = [
        pack.onnx_runner(m, settings, settings.pad_model_dir)
        for m in pack.pad_manifests(settings, settings.pad_models)
    ]
    return PadScorer(runners, settings.pad_threshold)


def build_shadow(settings: LivenessSettings) -> PadScorer | None:
    """The candidate PAD models scored in shadow; None when none is configured."""
    if not settings.pad_enabled or not settings.pad_shadow_models:
        return None
    runners = [
        pack.onnx_runner(m, settings, settings.pad_model_dir)
        for m in pack.pad_manifests(settings, settings.pad_shadow_models)
    ]
    return PadScorer(runners, settings.pad_shadow_threshold)


def build_policies(settings: LivenessSettings, live: PadScorer | None) -> PadPolicies:
    """The live PAD models plus the ones organisations may be pinned to (loaded once)."""
    live_ids = {r.manifest.id for r in live.runners} if live else set()
    extra = [m for m in settings.pad_pinnable_models if m not in live_ids]
    if live is None or not extra:
        return PadPolicies(live)
    runners = [
        pack.onnx_runner(m, settings, settings.pad_model_dir)
        for m in pack.pad_manifests(settings, tuple(extra))
    ]
    return PadPolicies(live, runners)


def policy(settings: LivenessSettings) -> ChallengePolicy:
    return same_named(
        ChallengePolicy,
        settings,
        ttl_seconds=settings.challenge_ttl_seconds,
        length=settings.challenge_length,
    )


async def build(
    settings: LivenessSettings, *, overrides: LivenessOverrides | None = None
) -> LivenessCore:
    chosen = overrides or LivenessOverrides()
    pad = chosen.pad or await asyncio.to_thread(build_pad, settings)
    database = chosen.open_database(settings)
    shadow = await asyncio.to_thread(build_shadow, settings)
    policies = await asyncio.to_thread(build_policies, settings, pad)
    liveness = Liveness(
        database=database,
        pad=pad,
        policy=policy(settings),
        shadow=shadow,
        policies=policies,
        max_new_devices_per_day=settings.max_new_devices_per_day,
    )
    if chosen.clock is not None:
        liveness.clock = chosen.clock
    sweeper = LivenessSweeper(
        database,
        liveness.clock,
        timedelta(hours=settings.nonce_retention_hours),
        settings.retention_batch_size,
    )
    retention = PeriodicSweep(
        sweeper.sweep, settings.retention_sweep_interval_seconds, "liveness-retention"
    )
    retention.start()
    return LivenessCore(database=database, liveness=liveness, retention=retention)
