"""Settings of the liveness service, from `LIVENESS_*` environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from identity_inference.pack import DEFAULT_PAD_MODELS, InferenceSettings
from identity_runtime.settings import DatabaseSettings, retention_batch_setting, setting
from services.liveness.checks import MAX_NEW_DEVICES_PER_DAY, ChallengePolicy


@dataclass(frozen=True, kw_only=True)
class LivenessSettings(DatabaseSettings, InferenceSettings):
    """Everything the liveness service reads from its environment."""

    RESIDENT_ENDPOINTS = ("database_url",)

    pad_enabled: bool = setting(
        True,
        "Presentation-attack detection. false = decisions rest on the flash challenge alone "
        "(one-machine runs only: production refuses to start, `identity up` warns)",
    )
    pad_model_dir: Path | None = setting(
        None,
        "Directory of your own copy of the MiniFASNet weights (same file names, checked "
        "against the manifests); unset = the weights packaged with identity_inference",
    )
    pad_models: tuple[str, ...] = setting(DEFAULT_PAD_MODELS, "PAD model ids (manifests), fused")
    pad_pinnable_models: tuple[str, ...] = setting(
        (),
        "Further PAD model ids loaded so that organisations can be pinned to them "
        "(kyc-tier's per-organisation liveness policy, e.g. the previous version during a "
        "rollout); the live models are always pinnable",
    )
    pad_threshold: float | None = setting(
        None, "Fused live-score threshold; unset = mean of the manifests' thresholds"
    )
    pad_shadow_models: tuple[str, ...] = setting(
        (),
        "Candidate PAD model ids scored in shadow on the same crops: they never decide; "
        "their agreement with the live models and their score shift go to the metrics "
        "(docs/runbooks/model-rollback.md); empty = no shadow",
    )
    pad_shadow_threshold: float | None = setting(
        None, "The candidate's fused live-score threshold; unset = mean of its manifests'"
    )
    # Defaults: the domain's ChallengePolicy (their one home).
    challenge_ttl_seconds: int = setting(
        ChallengePolicy.ttl_seconds, "Time a flash challenge stays valid"
    )
    challenge_length: int = setting(
        ChallengePolicy.length, "Colours per flash challenge (distinct, random order)"
    )
    flash_duration_ms: int = setting(
        ChallengePolicy.flash_duration_ms, "How long the SDK shows each colour"
    )
    nonce_retention_hours: int = setting(
        ChallengePolicy.nonce_retention_hours,
        "How long a bundle nonce is remembered (replay window)",
    )
    retention_sweep_interval_seconds: float = setting(
        600.0,
        "How often expired challenges and nonces are purged (also once at start-up)",
    )
    retention_batch_size: int = retention_batch_setting()
    max_clock_skew_seconds: int = setting(
        ChallengePolicy.max_clock_skew_seconds,
        "Accepted distance between a bundle's capture time and now",
    )
    min_flash_response: float = setting(
        ChallengePolicy.min_flash_response,
        "Smallest mean chromaticity shift counted as a flash response",
    )
    min_flash_score: float = setting(
        ChallengePolicy.min_flash_score, "Share of colour slots that must match the issued order"
    )
    min_card_flash_response: float = setting(
        ChallengePolicy.min_card_flash_response,
        "Smallest flash response counted for a KTP card (a screen reflects a few per cent)",
    )
    card_flash_required: bool = setting(
        ChallengePolicy.card_flash_required,
        "A KTP capture must carry the card's answer to the flash challenge (production: always)",
    )
    max_new_devices_per_day: int = setting(
        MAX_NEW_DEVICES_PER_DAY,
        "New signing devices a customer may register in 24 hours; the next is refused "
        "(409 DEVICE_LIMIT_REACHED, metadata retry_after_seconds) until the oldest of them "
        "is a day old",
    )

    def validate(self) -> list[tuple[str, str]]:
        problems = super().validate()
        if self.environment == "production" and not self.pad_enabled:
            problems.append(
                (
                    "pad_enabled",
                    "production needs presentation-attack detection; "
                    "challenge-only decisions are for one-machine runs",
                )
            )
        if self.environment == "production" and not self.card_flash_required:
            problems.append(
                (
                    "card_flash_required",
                    "production judges every KTP card's answer to the flash "
                    "(a screen showing a card barely answers)",
                )
            )
        if self.pad_enabled and not self.pad_models:
            problems.append(("pad_models", "name at least one PAD model (or disable PAD)"))
        if self.pad_pinnable_models and not self.pad_enabled:
            problems.append(("pad_pinnable_models", "pinning needs PAD enabled"))
        if self.pad_shadow_models and not self.pad_enabled:
            problems.append(("pad_shadow_models", "a shadow needs live PAD to compare with"))
        if self.pad_model_dir is not None and not self.pad_model_dir.is_dir():
            problems.append(("pad_model_dir", f"{self.pad_model_dir} is not a directory"))
        if not 2 <= self.challenge_length <= 6:
            problems.append(("challenge_length", "between 2 and 6 (the palette has 6 colours)"))
        if self.challenge_ttl_seconds <= 0 or self.flash_duration_ms <= 0:
            problems.append(("challenge_ttl_seconds", "TTL and flash duration must be positive"))
        if self.max_new_devices_per_day < 1:
            problems.append(("max_new_devices_per_day", "at least 1"))
        if self.pad_threshold is not None and not 0 < self.pad_threshold < 1:
            problems.append(("pad_threshold", "must be in (0, 1)"))
        return problems
