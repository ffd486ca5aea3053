"""False-match-rate calibration: P(impostor score >= s) for a model.

Method (fitted by `tools/calibrate_matching.py`, one JSON file per model id):

- Below the tail threshold `u` the estimate is the empirical survival of the
  impostor cosine scores, stored as a table on a 0.01 grid.
- Above `u` (the top `tail_fraction` of impostor scores) a generalised Pareto
  distribution is fitted to the exceedances by maximum likelihood (profile
  likelihood over the shape). Peaks-over-threshold is the standard extreme
  value tool for estimating rates below what the sample resolves directly.
- Estimates are floored at `fmr_floor`: with a few hundred impostor pairs,
  anything lower is extrapolation the data cannot support, so the service
  reports "at most the floor" rather than a fabricated 1e-12.

Domain code: numpy only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BUILTIN_DIR = Path(__file__).parent / "calibration"
SCHEMA = "identity-platform/fmr-calibration/v1"


@dataclass(frozen=True)
class TailFit:
    threshold: float  # u
    exceedance_rate: float  # P(S > u)
    shape: float  # xi
    scale: float  # sigma

    def survival(self, score: float) -> float:
        excess = score - self.threshold
        if excess <= 0:
            return self.exceedance_rate
        if abs(self.shape) < 1e-9:
            return self.exceedance_rate * math.exp(-excess / self.scale)
        base = 1.0 + self.shape * excess / self.scale
        if base <= 0:
            return 0.0
        return self.exceedance_rate * base ** (-1.0 / self.shape)


@dataclass(frozen=True)
class Calibration:
    calibration_id: str
    model_id: str
    tail: TailFit
    # (score, P(S >= score)) below the tail threshold, ascending scores.
    survival_scores: tuple[float, ...]
    survival_rates: tuple[float, ...]
    fmr_floor: float
    recommended_threshold: float
    target_fmr: float

    def false_match_rate(self, score: float) -> float:
        if not math.isfinite(score):
            return 1.0
        if score >= self.tail.threshold:
            rate = self.tail.survival(score)
        elif self.survival_scores and score > self.survival_scores[0]:
            rate = float(np.interp(score, self.survival_scores, self.survival_rates))
        else:
            rate = self.survival_rates[0] if self.survival_rates else 1.0
        return min(1.0, max(self.fmr_floor, rate))

    @classmethod
    def from_document(cls, document: dict, source: str) -> Calibration:
        if document.get("schema") != SCHEMA:
            raise ValueError(f"{source}: not a {SCHEMA} document")
        tail = document["tail"]
        # The table ends where the tail begins, so the estimate is continuous at u.
        table = [
            (s, r) for s, r in document["empirical_survival"] if float(s) < float(tail["threshold"])
        ]
        table.append((tail["threshold"], tail["exceedance_rate"]))
        return cls(
            calibration_id=str(document["calibration_id"]),
            model_id=str(document["model_id"]),
            tail=TailFit(
                threshold=float(tail["threshold"]),
                exceedance_rate=float(tail["exceedance_rate"]),
                shape=float(tail["shape"]),
                scale=float(tail["scale"]),
            ),
            survival_scores=tuple(float(s) for s, _ in table),
            survival_rates=tuple(float(r) for _, r in table),
            fmr_floor=float(document["fmr_floor"]),
            recommended_threshold=float(document["recommended_threshold"]),
            target_fmr=float(document["target_fmr"]),
        )


def load_calibrations(extra_dir: Path | None = None) -> dict[str, Calibration]:
    """Built-in calibrations, overridden by an operator's directory (model id -> calibration)."""
    found: dict[str, Calibration] = {}
    for directory in (BUILTIN_DIR, extra_dir):
        if directory is None or not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.json")):
            calibration = Calibration.from_document(json.loads(path.read_text()), str(path))
            found[calibration.model_id] = calibration
    return found


# --- fitting (used by tools/calibrate_matching.py) ---------------------------------


def _gpd_negative_log_likelihood(excess: np.ndarray, shape: float, scale: float) -> float:
    if scale <= 0:
        return math.inf
    if abs(shape) < 1e-9:
        return len(excess) * math.log(scale) + float(excess.sum()) / scale
    base = 1.0 + shape * excess / scale
    if np.any(base <= 0):
        return math.inf
    return len(excess) * math.log(scale) + (1.0 + 1.0 / shape) * float(np.log(base).sum())


def _best_scale(excess: np.ndarray, shape: float) -> tuple[float, float]:
    """Golden-section search of log(scale) for a fixed shape."""
    low = math.log(max(float(excess.max()) * 1e-3, 1e-6))
    high = math.log(float(excess.max()) * 100.0)
    if shape < 0:
        # The support must reach the largest exceedance: scale > -shape * max.
        low = max(low, math.log(-shape * float(excess.max()) * (1 + 1e-9)))
    ratio = (math.sqrt(5) - 1) / 2
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc = _gpd_negative_log_likelihood(excess, shape, math.exp(c))
    fd = _gpd_negative_log_likelihood(excess, shape, math.exp(d))
    for _ in range(200):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = _gpd_negative_log_likelihood(excess, shape, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = _gpd_negative_log_likelihood(excess, shape, math.exp(d))
        if b - a < 1e-10:
            break
    scale = math.exp((a + b) / 2)
    return scale, _gpd_negative_log_likelihood(excess, shape, scale)


def fit_tail(impostor_scores: np.ndarray, tail_fraction: float) -> TailFit:
    """Peaks over threshold: GPD maximum likelihood on the top `tail_fraction`."""
    scores = np.sort(np.asarray(impostor_scores, dtype=np.float64))
    threshold = float(np.quantile(scores, 1.0 - tail_fraction))
    excess = scores[scores > threshold] - threshold
    if len(excess) < 10:
        raise ValueError("fewer than 10 exceedances: too few impostor scores for a tail fit")
    best = (math.inf, 0.0, 0.0)
    for shape in np.linspace(-0.6, 0.6, 241):
        scale, nll = _best_scale(excess, float(shape))
        if nll < best[0]:
            best = (nll, float(shape), scale)
    _, shape, scale = best
    return TailFit(
        threshold=threshold, exceedance_rate=len(excess) / len(scores), shape=shape, scale=scale
    )


def empirical_survival(
    impostor_scores: np.ndarray, below: float, step: float = 0.01
) -> list[tuple[float, float]]:
    scores = np.asarray(impostor_scores, dtype=np.float64)
    start = math.floor(float(scores.min()) / step) * step
    grid = np.arange(start, below, step)
    return [(round(float(s), 4), float((scores >= s).mean())) for s in grid]


def threshold_for(calibration: Calibration, target_fmr: float, step: float = 0.005) -> float:
    """The smallest score on a `step` grid whose estimated FMR is at most the target."""
    for score in np.arange(-1.0, 1.0 + step, step):
        if calibration.false_match_rate(float(score)) <= target_fmr:
            return round(float(score), 4)
    return 1.0
