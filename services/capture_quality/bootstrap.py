"""Builds the capture-quality core from settings: the one place that chooses implementations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from identity_inference import images, pack
from identity_inference.detector import ROI_INPUT_SIZE, FaceDetector
from identity_inference.pad import crop_spec
from identity_runtime.server import Core
from identity_store.types import utcnow
from services.capture_quality.faces import DecodeBudget, FaceAssessor
from services.capture_quality.ktp import KtpChecker, build_ktp_checker
from services.capture_quality.settings import CaptureQualitySettings


@dataclass(frozen=True)
class CaptureQualityOverrides:
    """Ports to use instead of the ones built from settings (None = build the real one)."""

    # The face detector (its model runner loaded).
    detector: FaceDetector | None = None
    # KTP card analysis (OCR engines and the portrait detector).
    ktp: KtpChecker | None = None
    # The time a KTP's NIK birth date is judged by (its WIB date).
    clock: Callable[[], datetime] | None = None


@dataclass
class CaptureQualityCore(Core):
    """The capture-quality service's domain objects: faces and KTP cards."""

    faces: FaceAssessor
    ktp: KtpChecker

    async def ready(self) -> tuple[bool, str]:
        return True, f"detector {self.faces.detector.model_id} and KTP OCR loaded"

    async def close(self) -> None:
        self.faces.detector.runner.unload()
        # A detector given as an override may have no region session.
        roi_runner = getattr(self.faces.detector, "roi_runner", None)
        if roi_runner is not None:
            roi_runner.unload()


def build_detector(settings: CaptureQualitySettings) -> FaceDetector:
    """The detector, with its small region-of-interest session for flash frames."""
    manifest = pack.detector_manifest(settings, settings.detector_model)
    return FaceDetector(
        pack.onnx_runner(manifest, settings),
        pack.onnx_runner(manifest, settings, input_size=ROI_INPUT_SIZE),
    )


def build_face_assessor(
    settings: CaptureQualitySettings, detector: FaceDetector | None = None
) -> FaceAssessor:
    pad_specs = [crop_spec(m) for m in pack.pad_manifests(settings, settings.pad_models)]
    return FaceAssessor(
        detector or build_detector(settings),
        pad_specs,
        images.ImageLimits(max_pixels=settings.max_image_pixels),
        DecodeBudget(
            settings.frame_decode_pixels,
            settings.request_pixel_budget,
            settings.full_size_decodes,
        ),
    )


async def _ktp_checker(
    settings: CaptureQualitySettings, chosen: CaptureQualityOverrides
) -> KtpChecker:
    if chosen.ktp is not None:
        return chosen.ktp
    return await asyncio.to_thread(build_ktp_checker, settings, chosen.clock or utcnow)


async def build(
    settings: CaptureQualitySettings, *, overrides: CaptureQualityOverrides | None = None
) -> CaptureQualityCore:
    chosen = overrides or CaptureQualityOverrides()
    # Model loading verifies hashes and takes a few seconds: off the loop.
    faces, ktp = await asyncio.gather(
        asyncio.to_thread(build_face_assessor, settings, chosen.detector),
        _ktp_checker(settings, chosen),
    )
    return CaptureQualityCore(faces=faces, ktp=ktp)
