"""Settings of the capture-quality service, from `CAPTURE_QUALITY_*` environment variables."""

from __future__ import annotations

from dataclasses import dataclass

from identity_runtime.settings import ServiceSettings


@dataclass(frozen=True, kw_only=True)
class CaptureQualitySettings(ServiceSettings):
    """Everything the capture-quality service reads from its environment."""
