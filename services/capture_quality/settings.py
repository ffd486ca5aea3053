"""Settings of the capture-quality service, from `CAPTURE_QUALITY_*` environment variables."""

from __future__ import annotations

from dataclasses import dataclass

from identity_inference.pack import DEFAULT_DETECTOR, DEFAULT_PAD_MODELS, InferenceSettings
from identity_runtime.settings import setting


@dataclass(frozen=True, kw_only=True)
class CaptureQualitySettings(InferenceSettings):
    """Everything the capture-quality service reads from its environment."""

    detector_model: str = setting(DEFAULT_DETECTOR, "Manifest id of the face detector (5 landmarks)")
    # Only the manifests are read (crop scale and size): the PAD weights run in liveness.
    pad_models: tuple[str, ...] = setting(DEFAULT_PAD_MODELS, "PAD model ids whose crops AssessFace cuts")
