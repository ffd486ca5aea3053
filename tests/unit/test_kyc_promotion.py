"""The reference-quality score and the promotion policy as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.kyc_tier.flows.promotion import PromotionPolicy, choose_promotion, reference_quality
from services.kyc_tier.ports import EnrollmentInfo, MatchResult

NOW = datetime(2026, 11, 26, tzinfo=UTC)
HIGH = MatchResult(0.8, 0.5, True, 1e-7)


def _ref(source: str, quality: float | None, days_ago: float = 100, active: bool = True):
    created = NOW - timedelta(days=days_ago)
    return EnrollmentInfo("enr_x", "cus_x", source, active, "m", 4, "", created, None, quality)


def test_quality_is_the_mean_of_clipped_margins_to_the_selfie_limits() -> None:
    assert reference_quality({}) == 0.0
    # At the limit: 0; twice a minimum, or dead centre: 1; past a limit: clipped to 0.
    assert reference_quality({"yaw_deg": 15.0, "blur_laplacian_var": 200.0}) == 0.5
    assert reference_quality({"illumination_mean": 135.0, "roll_deg": -40.0}) == 0.5
    assert reference_quality({"pitch_deg": 5.0}) == pytest.approx(0.5)
    assert reference_quality({"unknown_measure": 3.0}) == 0.0


def test_the_policy_chooses_only_a_selfie_reference_clearly_worse_and_not_recent() -> None:
    policy = PromotionPolicy(margin=0.1, window=timedelta(days=30))
    selfie = _ref("onboarding_selfie", 0.5)
    assert choose_promotion(policy, 0.7, HIGH, [selfie], NOW) == selfie
    assert choose_promotion(policy, 0.55, HIGH, [selfie], NOW) is None
    assert choose_promotion(PromotionPolicy(enabled=False), 0.9, HIGH, [selfie], NOW) is None
    medium = MatchResult(0.8, 0.5, True, 1e-5)
    assert choose_promotion(policy, 0.9, medium, [selfie], NOW) is None
    for source in ("dukcapil", "ktp_extract"):
        assert choose_promotion(policy, 1.0, HIGH, [_ref(source, 0.0)], NOW) is None
    recent = _ref("step_up_promotion", 0.5, days_ago=10)
    assert choose_promotion(policy, 0.9, HIGH, [recent], NOW) is None
    old_promotion = _ref("step_up_promotion", 0.5, days_ago=31)
    assert choose_promotion(policy, 0.9, HIGH, [old_promotion], NOW) == old_promotion
    retired_recent = _ref("step_up_promotion", 0.1, days_ago=1, active=False)
    assert choose_promotion(policy, 0.9, HIGH, [selfie, retired_recent], NOW) is None
