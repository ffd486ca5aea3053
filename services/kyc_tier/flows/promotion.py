"""Reference quality and step-up promotion (seed 001, source `step_up_promotion`).

`reference_quality` scores a capture from capture-quality's measures of its
best frame: the mean, over the measures present, of each measure's margin to
its limit in capture-quality's selfie profile (identity_inference.quality
.SELFIE), scaled so that the limit scores 0 and a comfortable capture 1, each
clipped to [0, 1]. It is recorded with every enrollment (matching's
`enrollments.quality`).

`choose_promotion` is the policy (docs/kyc-tier.md "Step-up promotion"): an
ALLOWED step-up against the enrolled reference, scored in the HIGH band, whose
capture quality beats the active reference's by `margin`, replaces that
reference when it is selfie-derived (onboarding_selfie or step_up_promotion;
never dukcapil or ktp_extract), at most once per customer per `window`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.kyc_tier.ports import EnrollmentInfo, MatchResult

# capture-quality's selfie limits: name -> (kind, limit). "abs": |value| at
# most limit; "min": value at least limit (twice the limit scores 1); "max":
# value at most limit.
_LIMITS: Mapping[str, tuple[str, float]] = {
    "yaw_deg": ("abs", 15.0),
    "pitch_deg": ("abs", 10.0),
    "roll_deg": ("abs", 8.0),
    "inter_eye_distance_px": ("min", 90.0),
    "blur_laplacian_var": ("min", 100.0),
    "face_area_ratio": ("min", 0.20),
    "exposure_clipped_ratio": ("max", 0.15),
}
_ILLUMINATION = (60.0, 210.0)
SUPERSEDABLE = ("onboarding_selfie", "step_up_promotion")
HIGH_BAND_FALSE_MATCH_RATE = 1e-6


def _margin(kind: str, limit: float, value: float) -> float:
    if kind == "abs":
        return 1.0 - abs(value) / limit
    if kind == "min":
        return value / limit - 1.0
    return 1.0 - value / limit


def reference_quality(measures: Mapping[str, float]) -> float:
    """The capture's quality in [0, 1] (0 when no known measure is present)."""
    margins = [
        _margin(kind, limit, measures[name])
        for name, (kind, limit) in _LIMITS.items()
        if name in measures
    ]
    if "illumination_mean" in measures:
        low, high = _ILLUMINATION
        half = (high - low) / 2
        margins.append(1.0 - abs(measures["illumination_mean"] - (low + half)) / half)
    if not margins:
        return 0.0
    return sum(min(1.0, max(0.0, m)) for m in margins) / len(margins)


@dataclass(frozen=True)
class PromotionPolicy:
    enabled: bool = True
    # The capture's quality must exceed the active reference's by this much.
    margin: float = 0.1
    window: timedelta = timedelta(days=30)


def in_high_band(match: MatchResult) -> bool:
    return match.match and match.estimated_false_match_rate <= HIGH_BAND_FALSE_MATCH_RATE


def choose_promotion(
    policy: PromotionPolicy,
    quality: float,
    match: MatchResult,
    enrollments: Sequence[EnrollmentInfo],
    now: datetime,
) -> EnrollmentInfo | None:
    """The active reference an allowed step-up capture should replace, or None."""
    if not policy.enabled or not in_high_band(match):
        return None
    active = [e for e in enrollments if e.active]
    if len(active) != 1 or active[0].source not in SUPERSEDABLE:
        return None
    current = active[0]
    if current.quality is None or quality < current.quality + policy.margin:
        return None
    recent = now - policy.window
    if any(
        e.source == "step_up_promotion" and e.created_at is not None and e.created_at > recent
        for e in enrollments
    ):
        return None
    return current
