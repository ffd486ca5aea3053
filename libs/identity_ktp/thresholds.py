"""The KTP check's decision thresholds, with their defaults (the one home of
both: capture-quality's CAPTURE_QUALITY_KTP_* settings default to these)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    # Text sharpness (card.text_sharpness, ~1/edge width): the sweep's perfect
    # reads all score >= 0.20 (Gaussian sigma 2), its failed reads <= 0.185
    # (sigma 2.5, 9 px motion blur at 0 and 45 degrees, sigma 2.5 under
    # noise); docs/ktp.md.
    sharpness_min: float = 0.19
    # Glare relative to the card's own background, over the text area or the
    # portrait zone (the larger), as a fraction of that area.
    glare_max: float = 0.01
    # OCR reads every field of a 450 px card and misses fields at 350 px.
    card_width_min: float = 400.0
    field_min_confidence: float = 0.6
    # OCR confidence from which a NIK/date/gender contradiction is decisive.
    decisive_confidence: float = 0.8
    # Similarity below which a submitted field is reported as different.
    field_similarity_min: float = 0.85
    screen_score_min: float = 0.5
    # Re-capture score from which the periodic-spectrum cue is decisive on a
    # capture that passes every gate: the sweep's genuine captures that pass
    # the gates score <= 0.44 (peak 3.39), its simulated halftone prints and
    # screens >= 0.94 (peak 4.37). Simulated only: docs/ktp.md.
    screen_score_decisive: float = 0.85
