"""Builds the liveness core from settings: the one place that chooses implementations."""

from __future__ import annotations

from identity_runtime.server import Core
from services.liveness.settings import LivenessSettings


class LivenessCore(Core):
    """The liveness service's domain objects."""


async def build(settings: LivenessSettings) -> LivenessCore:
    return LivenessCore()
