"""Embedding contracts, enrollment sources and probe validation (domain, no gRPC)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from identity_runtime.errors import FailedPrecondition, InvalidArgument, invalid_field
from services.matching.calibration import Calibration

# Lower is better. The numbers equal identity.common.v1.EnrollmentSource.
SOURCE_PRIORITY = {"dukcapil": 1, "ktp_extract": 2, "onboarding_selfie": 3, "step_up_promotion": 4}
SOURCES_BY_PRIORITY = {v: k for k, v in SOURCE_PRIORITY.items()}
RETIRE_REASONS = ("erasure", "superseded", "review")
# Built-in default thresholds for models without a calibration (the model
# manifest's figure; the operator brings qe-face-v3).
BUILTIN_THRESHOLDS = {"qe-face-v3": 0.45}
# Without a configured floor, an organisation may lower its threshold this far
# below the deployment's default (a lower one lets far more impostors match).
DEFAULT_THRESHOLD_MARGIN = 0.1
ID_MAX = 40


@dataclass(frozen=True)
class EmbeddingContract:
    model_id: str
    model_version: str
    dimension: int

    def describe(self) -> str:
        return f"{self.model_id}/{self.dimension}"

    def same_gallery(self, other: EmbeddingContract) -> bool:
        """A gallery is pinned to model id + dimension (the version is recorded)."""
        return self.model_id == other.model_id and self.dimension == other.dimension


@dataclass(frozen=True)
class ThresholdInfo:
    """A threshold against the deployment's model: its calibrated false-match
    rate (-1 without a calibration) and the accepted range."""

    threshold: float
    false_match_rate: float
    default_threshold: float
    min_threshold: float
    max_threshold: float
    calibration_id: str
    model_id: str


@dataclass(frozen=True)
class ModelProfile:
    """What the deployment matches with: its contract, default threshold,
    the range of thresholds a request may ask for, and its calibration."""

    contract: EmbeddingContract
    default_threshold: float
    calibration: Calibration | None
    min_threshold: float = -1.0
    max_threshold: float = 1.0

    def threshold(self, requested: float | None) -> float:
        """The organisation's threshold from the request, else the default.

        Matching keeps no organisation records; the caller (kyc-tier, which
        owns them) sends the organisation's threshold, bounded here so that
        no request can make impostors match freely.
        """
        if requested is None:
            return self.default_threshold
        if not math.isfinite(requested) or not (
            # float32 on the wire: compare at its precision.
            self.min_threshold - 1e-6 <= requested <= self.max_threshold + 1e-6
        ):
            raise invalid_field(
                "threshold",
                f"must be between {self.min_threshold:g} and {self.max_threshold:g}",
            )
        return float(requested)

    def false_match_rate(self, score: float) -> float:
        """Estimated impostor probability of scoring >= score; -1 without a calibration."""
        return self.calibration.false_match_rate(score) if self.calibration else -1.0

    @property
    def calibration_id(self) -> str:
        return self.calibration.calibration_id if self.calibration else ""

    def describe(self, requested: float | None) -> ThresholdInfo:
        """The threshold (bounded as in `threshold`) with its false-match rate."""
        chosen = self.threshold(requested)
        return ThresholdInfo(
            threshold=chosen,
            false_match_rate=self.false_match_rate(chosen),
            default_threshold=self.default_threshold,
            min_threshold=self.min_threshold,
            max_threshold=self.max_threshold,
            calibration_id=self.calibration_id,
            model_id=self.contract.model_id,
        )


def resolve_profile(
    contract: EmbeddingContract,
    configured_threshold: float | None,
    calibrations: dict[str, Calibration],
    min_threshold: float | None = None,
    max_threshold: float = 1.0,
) -> ModelProfile:
    calibration = calibrations.get(contract.model_id)
    if configured_threshold is not None:
        threshold = configured_threshold
    elif calibration is not None:
        threshold = calibration.recommended_threshold
    elif contract.model_id in BUILTIN_THRESHOLDS:
        threshold = BUILTIN_THRESHOLDS[contract.model_id]
    else:
        raise ValueError(
            f"no threshold for model {contract.model_id!r}: set MATCHING_DEFAULT_THRESHOLD "
            "or provide a calibration file in MATCHING_CALIBRATION_DIR"
        )
    lowest = threshold - DEFAULT_THRESHOLD_MARGIN if min_threshold is None else min_threshold
    if not lowest <= threshold <= max_threshold:
        raise ValueError(
            f"the default threshold {threshold:g} is outside the accepted range "
            f"[{lowest:g}, {max_threshold:g}] (MATCHING_MIN_THRESHOLD, MATCHING_MAX_THRESHOLD)"
        )
    return ModelProfile(
        contract=contract,
        default_threshold=threshold,
        calibration=calibration,
        min_threshold=round(lowest, 6),
        max_threshold=max_threshold,
    )


def contract_mismatch(
    expected: EmbeddingContract, got: EmbeddingContract, what: str
) -> FailedPrecondition:
    return FailedPrecondition(
        f"{what} was produced under another embedding contract than the gallery's",
        "EMBEDDING_CONTRACT_MISMATCH",
        {"expected": expected.describe(), "got": got.describe()},
    )


def validate_embedding(
    field: str, contract: EmbeddingContract, values: Sequence[float], pinned: EmbeddingContract
) -> np.ndarray:
    """A unit-length float32 vector, or the precise reason it is refused.

    Never echoes values: embeddings are biometric data.
    """
    if not contract.model_id:
        raise invalid_field(f"{field}.contract.model_id", "is required")
    if not contract.same_gallery(pinned):
        raise contract_mismatch(pinned, contract, field)
    if len(values) != contract.dimension:
        raise InvalidArgument(
            f"{field} has {len(values)} values but its contract declares {contract.dimension}",
            "EMBEDDING_INVALID",
            {"field": field},
        )
    vector = np.asarray(values, dtype=np.float32)
    # A NaN or an infinity anywhere makes the squared norm NaN or infinite.
    norm = math.sqrt(float(vector @ vector))
    if not math.isfinite(norm) or norm < 1e-6:
        raise InvalidArgument(
            f"{field} has non-finite values or zero norm", "EMBEDDING_INVALID", {"field": field}
        )
    return vector / norm


def validate_id(field: str, value: str) -> str:
    if not value:
        raise invalid_field(field, "is required")
    if (
        len(value) > ID_MAX
        or not value.isascii()
        or not value.replace("_", "").replace("-", "").isalnum()
    ):
        raise invalid_field(field, f"must be at most {ID_MAX} letters, digits, '_' or '-'")
    return value


def threshold_profile(environ: Mapping[str, str] | None = None) -> ModelProfile:
    """The profile matching builds from its MATCHING_* settings in `environ`
    (default: this process's), without its database or keys."""
    from identity_runtime.settings import load_settings
    from services.matching.calibration import load_calibrations
    from services.matching.settings import threshold_settings_class

    found: Any = load_settings(threshold_settings_class(), "MATCHING", environ)
    return resolve_profile(
        EmbeddingContract(found.model_id, found.model_version, found.dimension),
        found.default_threshold,
        load_calibrations(found.calibration_dir),
        found.min_threshold,
        found.max_threshold,
    )


# Only these references may be superseded by a step-up promotion (seed 001:
# a dukcapil or ktp_extract reference ranks higher and is never replaced).
SUPERSEDABLE_SOURCES = ("onboarding_selfie", "step_up_promotion")


def validate_quality(quality: float | None) -> float | None:
    """A reference's capture quality: unset, or a number in [0, 1]."""
    if quality is not None and not (math.isfinite(quality) and 0.0 <= quality <= 1.0):
        raise invalid_field("quality", "must be a number between 0 and 1")
    return quality
