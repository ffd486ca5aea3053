"""Builds the capture-quality core from settings: the one place that chooses implementations."""

from __future__ import annotations

import asyncio

from identity_runtime.server import Core
from services.capture_quality.ktp import KtpChecker, build_ktp_checker
from services.capture_quality.settings import CaptureQualitySettings


class CaptureQualityCore(Core):
    """The capture-quality service's domain objects."""

    def __init__(self, ktp: KtpChecker):
        self.ktp = ktp


async def build(settings: CaptureQualitySettings) -> CaptureQualityCore:
    # Model loading verifies hashes and takes a few seconds: off the loop.
    ktp = await asyncio.to_thread(build_ktp_checker, settings)
    return CaptureQualityCore(ktp=ktp)
