"""Biometric evaluation: verification error rates, PAD error rates, impostor-tail calibration.

Definitions (ISO/IEC 19795-1, 30107-3):

- a comparison scores s (cosine similarity); it is a match when s >= t;
- FMR(t) = impostor scores >= t / impostors; FNMR(t) = genuine scores < t / genuine;
- EER: the error where FMR and FNMR cross (mean of the two at the closest threshold);
- AUC: probability that a random genuine pair scores above a random impostor
  pair (ties count half);
- "threshold at FMR <= x": the smallest observed threshold whose empirical
  FMR is <= x. With N impostor pairs the smallest non-zero FMR one can
  observe is 1/N, so for x < 1/N that threshold just clears the highest
  impostor score; the report says how many impostors back each figure;
- APCER: attack presentations accepted as bona fide / attacks;
  BPCER: bona fide presentations rejected / bona fide presentations.

Calibration: the matching service needs a false-match-rate estimate for any
score, far beyond what a few hundred impostor pairs can show empirically. We
fit a normal distribution to the impostor scores (cosine impostor scores of
a well-trained model are close to normal around a small mean) and estimate
FMR(s) = P(impostor >= s) = 1 - Phi((s - mean) / std). Format, stored in the
embedding manifest under `calibration.impostor_scores`:

    {"model": "normal", "mean": 0.13, "std": 0.09, "samples": 480,
     "max_observed": 0.41, "source": "...", "fitted": "2026-11-22"}

`estimate_fmr()` reads it. A normal tail is an extrapolation: beyond a few
standard deviations it is a model, not a measurement; refit on the
operator's own impostor pairs before relying on FMR estimates below 1e-4.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import NormalDist

import numpy as np

FMR_TARGETS = (1e-2, 1e-3, 1e-4)


@dataclass(frozen=True)
class OperatingPoint:
    fmr_target: float
    threshold: float
    fmr: float
    fnmr: float


@dataclass(frozen=True)
class VerificationReport:
    genuine: int
    impostor: int
    genuine_mean: float
    genuine_min: float
    impostor_mean: float
    impostor_max: float
    auc: float
    eer: float
    eer_threshold: float
    operating_points: list[OperatingPoint]

    def as_dict(self) -> dict:
        return asdict(self)


def auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    scores = np.concatenate([genuine, impostor])
    ranks = _average_ranks(scores)
    genuine_ranks = ranks[: len(genuine)].sum()
    return float(
        (genuine_ranks - len(genuine) * (len(genuine) + 1) / 2) / (len(genuine) * len(impostor))
    )


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def error_rates(
    genuine: np.ndarray, impostor: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """FMR and FNMR at each threshold (match when score >= threshold)."""
    impostor_sorted = np.sort(impostor)
    genuine_sorted = np.sort(genuine)
    fmr = 1 - np.searchsorted(impostor_sorted, thresholds, side="left") / len(impostor)
    fnmr = np.searchsorted(genuine_sorted, thresholds, side="left") / len(genuine)
    return fmr, fnmr


def _candidate_thresholds(genuine: np.ndarray, impostor: np.ndarray) -> np.ndarray:
    # Every score, and just above every impostor score (the most lenient
    # threshold that rejects it).
    above_impostors = np.nextafter(impostor, np.inf)
    return np.unique(np.concatenate([genuine, impostor, above_impostors]))


def verification_report(
    genuine: Sequence[float], impostor: Sequence[float], targets: Sequence[float] = FMR_TARGETS
) -> VerificationReport:
    g = np.asarray(genuine, dtype=np.float64)
    i = np.asarray(impostor, dtype=np.float64)
    if not len(g) or not len(i):
        raise ValueError("need genuine and impostor scores")
    thresholds = _candidate_thresholds(g, i)
    fmr, fnmr = error_rates(g, i, thresholds)
    closest = int(np.argmin(np.abs(fmr - fnmr)))
    points = []
    for target in targets:
        allowed = np.nonzero(fmr <= target)[0]
        k = int(allowed[0])
        points.append(OperatingPoint(target, float(thresholds[k]), float(fmr[k]), float(fnmr[k])))
    return VerificationReport(
        genuine=len(g),
        impostor=len(i),
        genuine_mean=float(g.mean()),
        genuine_min=float(g.min()),
        impostor_mean=float(i.mean()),
        impostor_max=float(i.max()),
        auc=auc(g, i),
        eer=float((fmr[closest] + fnmr[closest]) / 2),
        eer_threshold=float(thresholds[closest]),
        operating_points=points,
    )


@dataclass(frozen=True)
class PadReport:
    threshold: float
    bona_fide: int
    attacks: int
    apcer: float
    bpcer: float
    attack_scores: list[float]
    bona_fide_scores: list[float]

    def as_dict(self) -> dict:
        return asdict(self)


def pad_report(bona_fide: Sequence[float], attacks: Sequence[float], threshold: float) -> PadReport:
    """Scores are live probabilities; live when score >= threshold."""
    b = np.asarray(bona_fide, dtype=np.float64)
    a = np.asarray(attacks, dtype=np.float64)
    return PadReport(
        threshold=threshold,
        bona_fide=len(b),
        attacks=len(a),
        apcer=float((a >= threshold).mean()) if len(a) else 0.0,
        bpcer=float((b < threshold).mean()) if len(b) else 0.0,
        attack_scores=[round(float(x), 4) for x in a],
        bona_fide_scores=[round(float(x), 4) for x in b],
    )


def fit_impostor_tail(impostor: Sequence[float], source: str) -> dict:
    scores = np.asarray(impostor, dtype=np.float64)
    return {
        "model": "normal",
        "mean": round(float(scores.mean()), 6),
        "std": round(float(scores.std(ddof=1)), 6),
        "samples": int(len(scores)),
        "max_observed": round(float(scores.max()), 6),
        "source": source,
        "fitted": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def estimate_fmr(calibration: dict, score: float) -> float:
    """Estimated P(impostor score >= score) from a manifest's calibration section."""
    tail = calibration["impostor_scores"]
    if tail.get("model") != "normal":
        raise ValueError(f"unknown impostor score model {tail.get('model')!r}")
    z = (score - float(tail["mean"])) / float(tail["std"])
    return 0.5 * math.erfc(z / math.sqrt(2))


def threshold_for_fmr(calibration: dict, fmr: float) -> float:
    """The score whose estimated FMR is `fmr` (inverse of estimate_fmr)."""
    tail = calibration["impostor_scores"]
    return float(tail["mean"]) + float(tail["std"]) * NormalDist().inv_cdf(1 - fmr)


def plot_det(genuine: Sequence[float], impostor: Sequence[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g, i = np.asarray(genuine), np.asarray(impostor)
    thresholds = _candidate_thresholds(g, i)
    fmr, fnmr = error_rates(g, i, thresholds)
    # Normal-deviate axes; rates of exactly 0 or 1 are clipped to the resolution of the data.
    floor = 0.5 / max(len(g), len(i))
    normal = NormalDist()
    x = [normal.inv_cdf(min(max(v, floor), 1 - floor)) for v in fmr]
    y = [normal.inv_cdf(min(max(v, floor), 1 - floor)) for v in fnmr]
    ticks = [v for v in (1e-3, 1e-2, 0.05, 0.2, 0.5) if v >= floor]
    figure, axes = plt.subplots(figsize=(5.5, 5))
    axes.plot(x, y, lw=1.5)
    axes.set_xticks([normal.inv_cdf(t) for t in ticks], [f"{t:g}" for t in ticks])
    axes.set_yticks([normal.inv_cdf(t) for t in ticks], [f"{t:g}" for t in ticks])
    limit = (normal.inv_cdf(floor), normal.inv_cdf(0.6))
    axes.set_xlim(*limit)
    axes.set_ylim(*limit)
    axes.set_xlabel("FMR")
    axes.set_ylabel("FNMR")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_histogram(
    genuine: Sequence[float], impostor: Sequence[float], path: Path, title: str, threshold: float
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    bins = np.linspace(-0.3, 1.0, 53).tolist()
    axes.hist(impostor, bins=bins, alpha=0.6, label=f"impostor ({len(impostor)})", density=True)
    axes.hist(genuine, bins=bins, alpha=0.6, label=f"genuine ({len(genuine)})", density=True)
    axes.axvline(threshold, color="k", ls="--", lw=1, label=f"FMR<=1e-3 threshold {threshold:.3f}")
    axes.set_xlabel("cosine similarity")
    axes.set_ylabel("density")
    axes.set_title(title)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
