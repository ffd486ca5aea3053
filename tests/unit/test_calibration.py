"""The false-match-rate calibration: the shipped SFace file and the tail fit itself."""

from __future__ import annotations

import numpy as np

from services.matching.calibration import (
    Calibration,
    empirical_survival,
    fit_tail,
    load_calibrations,
    threshold_for,
)


def test_shipped_sface_calibration_is_monotone_continuous_and_consistent() -> None:
    calibration = load_calibrations()["sface-2021dec"]
    scores = np.linspace(-1, 1, 2001)
    rates = [calibration.false_match_rate(float(s)) for s in scores]
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))
    assert rates[0] == 1.0 and rates[-1] == calibration.fmr_floor
    u = calibration.tail.threshold
    assert (
        abs(calibration.false_match_rate(u - 1e-9) - calibration.false_match_rate(u + 1e-9)) < 1e-3
    )
    # The recommended threshold is where the estimate reaches the target.
    assert calibration.false_match_rate(calibration.recommended_threshold) <= calibration.target_fmr
    assert (
        calibration.false_match_rate(calibration.recommended_threshold - 0.01)
        > calibration.target_fmr
    )
    assert 0.3 < calibration.recommended_threshold < 0.6


def test_tail_fit_recovers_a_known_distribution() -> None:
    # Impostor-like scores: Gaussian, whose tail the GPD fit must follow.
    rng = np.random.default_rng(3)
    scores = rng.normal(0.13, 0.085, 200_000)
    tail = fit_tail(scores, 0.15)
    document = {
        "schema": "identity-platform/fmr-calibration/v1",
        "calibration_id": "synthetic",
        "model_id": "m",
        "tail": tail.__dict__,
        "empirical_survival": empirical_survival(scores, tail.threshold),
        "fmr_floor": 1e-9,
        "recommended_threshold": 0.0,
        "target_fmr": 1e-4,
    }
    calibration = Calibration.from_document(document, "synthetic")
    # Within a factor of 2.5 out to 3.8 sigma (true rate 7e-5). Peaks over a
    # finite threshold slightly under-reads a Gaussian's far tail; that bias
    # is far smaller than the sampling spread of a few hundred impostor pairs
    # (the shipped file's bootstrap interval), which the docs state.
    for score in (0.3, 0.4, 0.45):
        true_rate = float((scores >= score).mean())
        assert abs(np.log10(calibration.false_match_rate(score)) - np.log10(true_rate)) < 0.4, score
    # Gaussian tails are light: the fitted shape is negative, not heavy-tailed.
    assert tail.shape < 0.05
    assert 0.43 < threshold_for(calibration, 1e-4) < 0.5
