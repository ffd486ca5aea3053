"""The KTP component of capture-quality: CheckKtp's core.

Holds a small pool of `KtpAnalyzer`s (each owns an OCR engine and a face
detector, neither thread-safe) and runs each request's decode and analysis
on a worker thread, so the event loop keeps serving health checks and
other RPCs while OCR runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from identity_capture.limits import MAX_FRAMES
from identity_inference.images import ImageLimits, decode
from identity_ktp import fields as ktp_fields
from identity_ktp.analysis import KtpAnalyzer, KtpReport
from identity_ktp.flash import thumbnail
from identity_ktp.nik import NIK_LENGTH, NIK_NOT_NUMERIC, wib_date
from identity_ktp.ocr import OcrEngine
from identity_ktp.portrait import PortraitFinder, load_face_detector
from identity_ktp.regions import default_index
from identity_ktp.thresholds import Thresholds
from identity_runtime.errors import InvalidArgument, invalid_field
from identity_store.types import utcnow
from services.capture_quality.settings import CaptureQualitySettings

MAX_SUBMITTED_VALUE = 256


@dataclass(frozen=True)
class KtpCheckRequest:
    image: bytes
    submitted_nik: str = ""
    submitted_fields: Mapping[str, str] = field(default_factory=dict)
    include_portrait_crop: bool = False
    # Frames taken while the SDK flashed the KTP challenge's colours.
    flash_frames: tuple[bytes, ...] = ()

    def __repr__(self) -> str:  # never print the NIK, fields or image
        return (
            f"KtpCheckRequest(image_bytes={len(self.image)}, "
            f"flash_frames={len(self.flash_frames)}, fields={sorted(self.submitted_fields)})"
        )


def _validate(request: KtpCheckRequest) -> str:
    """The submitted NIK, stripped; raises InvalidArgument for bad input."""
    if len(request.flash_frames) >= MAX_FRAMES:
        raise invalid_field("flash_frames", f"at most {MAX_FRAMES - 1} flash frames")
    nik = request.submitted_nik.strip()
    if nik:
        failed = [
            rule
            for rule, ok in (
                (NIK_LENGTH, len(nik) == 16),
                (NIK_NOT_NUMERIC, nik.isascii() and nik.isdigit()),
            )
            if not ok
        ]
        if failed:
            raise InvalidArgument(
                "submitted_nik is not a NIK: " + ", ".join(failed),
                "NIK_INVALID",
                {"field": "submitted_nik", "check": failed[0]},
            )
    for name, value in request.submitted_fields.items():
        if name not in ktp_fields.FIELD_NAMES:
            raise invalid_field(
                "submitted_fields",
                "unknown field name; expected KtpField names such as name, birth_date",
            )
        if len(value) > MAX_SUBMITTED_VALUE:
            raise invalid_field(
                "submitted_fields", f"values are at most {MAX_SUBMITTED_VALUE} characters"
            )
    return nik


class KtpChecker:
    def __init__(
        self,
        analyzers: list[KtpAnalyzer],
        *,
        max_pixels: int,
        min_side: int,
        clock: Callable[[], datetime] = utcnow,
    ):
        if not analyzers:
            raise ValueError("at least one KTP analyzer is needed")
        self._idle: asyncio.Queue[KtpAnalyzer] = asyncio.Queue()
        for analyzer in analyzers:
            self._idle.put_nowait(analyzer)
        self.max_pixels = max_pixels
        self.min_side = min_side
        self.ocr_model = analyzers[0].ocr.model_id
        # The card's NIK birth date is judged against this clock's WIB date.
        self.clock = clock

    def _run(
        self,
        analyzer: KtpAnalyzer,
        request: KtpCheckRequest,
        nik: str,
        release: Callable[[], None],
    ) -> KtpReport:
        try:
            limits = ImageLimits(max_pixels=self.max_pixels, min_side=self.min_side)
            image = decode(request.image, limits, "card_image")
            # Checked before any model runs; kept small (a mean colour needs no detail).
            flash_images = [
                thumbnail(decode(frame, limits, f"flash_frames[{i}]"))
                for i, frame in enumerate(request.flash_frames)
            ]
            return analyzer.analyze(
                image,
                submitted_nik=nik,
                submitted_fields=request.submitted_fields,
                include_portrait_crop=request.include_portrait_crop,
                today=wib_date(self.clock()),
                flash_frames=flash_images,
            )
        finally:
            # Back to the pool only when the work is done, even if the
            # caller gave up (a cancelled await does not stop the thread).
            release()

    async def check(self, request: KtpCheckRequest) -> KtpReport:
        nik = _validate(request)
        analyzer = await self._idle.get()
        loop = asyncio.get_running_loop()

        def release() -> None:
            loop.call_soon_threadsafe(self._idle.put_nowait, analyzer)

        return await asyncio.to_thread(self._run, analyzer, request, nik, release)


def build_ktp_checker(
    settings: CaptureQualitySettings, clock: Callable[[], datetime] = utcnow
) -> KtpChecker:
    """Load and verify the OCR and face models; raises when one is missing or altered."""
    if settings.ktp_workers < 1 or settings.ktp_ocr_threads < 1:
        raise ValueError(
            "CAPTURE_QUALITY_KTP_WORKERS and CAPTURE_QUALITY_KTP_OCR_THREADS must be at least 1"
        )
    thresholds = Thresholds(
        sharpness_min=settings.ktp_sharpness_min,
        glare_max=settings.ktp_glare_max,
        card_width_min=settings.ktp_card_width_min,
        field_min_confidence=settings.ktp_field_min_confidence,
    )
    regions = default_index()
    analyzers = [
        KtpAnalyzer(
            OcrEngine(threads=settings.ktp_ocr_threads),
            PortraitFinder(load_face_detector()),
            regions,
            thresholds,
        )
        for _ in range(settings.ktp_workers)
    ]
    return KtpChecker(
        analyzers,
        max_pixels=settings.max_image_pixels,
        min_side=settings.ktp_min_side,
        clock=clock,
    )
