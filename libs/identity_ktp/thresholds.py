"""The KTP check's decision thresholds, with their defaults (the one home of
both: capture-quality's CAPTURE_QUALITY_KTP_* settings default to these)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    # OCR reads the dev capture fully down to ~29 and collapses below ~10
    # (docs/ktp.md); 40 keeps a margin.
    blur_min: float = 40.0
    glare_max: float = 0.02
    card_width_min: float = 600.0
    field_min_confidence: float = 0.6
    # OCR confidence from which a NIK/date/gender contradiction is decisive.
    decisive_confidence: float = 0.8
    # Similarity below which a submitted field is reported as different.
    field_similarity_min: float = 0.85
    screen_score_min: float = 0.5
