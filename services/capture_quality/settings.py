"""Settings of the capture-quality service, from `CAPTURE_QUALITY_*` environment variables."""

from __future__ import annotations

from dataclasses import dataclass

from identity_inference.pack import DEFAULT_DETECTOR, DEFAULT_PAD_MODELS, InferenceSettings
from identity_ktp.thresholds import Thresholds
from identity_runtime.settings import setting


@dataclass(frozen=True, kw_only=True)
class CaptureQualitySettings(InferenceSettings):
    """Everything the capture-quality service reads from its environment."""

    detector_model: str = setting(
        DEFAULT_DETECTOR, "Manifest id of the face detector (5 landmarks)"
    )
    # --- memory budget of AssessFace (docs/inference.md, "Memory budget") ---
    frame_decode_pixels: int = setting(
        3_000_000,
        "Frames with more pixels are downscaled to this many while decoding "
        "(JPEG inside the decoder; PNG and WebP right after it)",
    )
    request_pixel_budget: int = setting(
        160_000_000,
        "Pixels the frames of one AssessFace request may declare in total; "
        "more is refused before decoding (IMAGE_BUDGET_EXCEEDED)",
    )
    full_size_decodes: int = setting(
        1, "PNG/WebP frames over frame_decode_pixels decoded at full size at once, process-wide"
    )
    # Only the manifests are read (crop scale and size): the PAD weights run in liveness.
    pad_models: tuple[str, ...] = setting(
        DEFAULT_PAD_MODELS, "PAD model ids whose crops AssessFace cuts"
    )

    # --- KTP card checks (CheckKtp) ---
    ktp_ocr_threads: int = setting(
        2, "ONNX Runtime intra-op threads per KTP OCR engine (spinning is off)"
    )
    ktp_workers: int = setting(
        1, "KTP analyses run at once; each holds its own OCR engine (~150 MB)"
    )
    ktp_min_side: int = setting(320, "Shortest side of a KTP photo, in pixels")
    ktp_sharpness_min: float = setting(
        Thresholds.sharpness_min,
        "Text sharpness (least sharp direction, ~1/edge width) the rectified card must reach",
    )
    ktp_glare_max: float = setting(
        Thresholds.glare_max,
        "Largest fraction of the text area or portrait under glare above the card background",
    )
    ktp_card_width_min: float = setting(
        Thresholds.card_width_min, "Smallest card width in the photo, in pixels"
    )
    ktp_field_min_confidence: float = setting(
        Thresholds.field_min_confidence,
        "OCR confidence below which NIK, name or birth date fail the check",
    )
