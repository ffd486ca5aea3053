"""Builds the capture-quality core from settings: the one place that chooses implementations."""

from __future__ import annotations

from identity_runtime.server import Core
from services.capture_quality.settings import CaptureQualitySettings


class CaptureQualityCore(Core):
    """The capture-quality service's domain objects."""


async def build(settings: CaptureQualitySettings) -> CaptureQualityCore:
    return CaptureQualityCore()
