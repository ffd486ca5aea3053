"""Per-organisation liveness policy: the switches kyc-tier keeps for each
organisation (it owns them; liveness keeps no organisation records) arrive
with each CheckLiveness call and apply to that call only.

- `pad_models`: the organisation is pinned to these PAD models (fused), which
  must be loaded here: the live set (`LIVENESS_PAD_MODELS`) or the extra ones
  kept for pinning (`LIVENESS_PAD_PINNABLE_MODELS`, e.g. the previous version
  during a rollout). Anything else is FAILED_PRECONDITION / MODEL_NOT_CONFIGURED.
- `pad_threshold`: the fused live-score threshold for the organisation.
- `flash_check`: off decides on PAD and the device attestation alone (a
  fallback for an SDK or device family whose flash fails); never where PAD is
  off, since nothing would be left to decide on (POLICY_UNSUPPORTED).
- `shadow`: off skips the candidate's shadow scoring for the organisation.
"""

from __future__ import annotations

from collections.abc import Sequence

from identity_capture.policy import LivenessPolicy
from identity_inference.pad import PadScorer
from identity_inference.runners import Runner
from identity_runtime.errors import FailedPrecondition, invalid_field


class PadPolicies:
    """The loaded PAD runners by model id, and the fused scorer of each
    policy (built once per distinct pinning, from runners already loaded)."""

    def __init__(self, live: PadScorer | None, pinnable: Sequence[Runner] = ()):
        self.live = live
        self.pinnable = list(pinnable)
        self._runners: dict[str, Runner] = {r.manifest.id: r for r in self.pinnable}
        if live is not None:
            self._runners.update({r.manifest.id: r for r in live.runners})
        self._scorers: dict[tuple[tuple[str, ...], float | None], PadScorer] = {}

    @property
    def loaded(self) -> list[str]:
        return sorted(self._runners)

    def scorer(self, policy: LivenessPolicy) -> PadScorer | None:
        """The scorer deciding under `policy`; None when PAD is off here.
        Raises (before anything is consumed) for a policy this deployment
        cannot honour."""
        if policy.pad_threshold is not None and not 0.0 < policy.pad_threshold < 1.0:
            raise invalid_field("policy.pad_threshold", "must be in (0, 1)")
        if self.live is None:
            if policy.pins_pad or not policy.flash_check:
                raise FailedPrecondition(
                    "the organisation's liveness policy needs PAD, which is off here",
                    "POLICY_UNSUPPORTED",
                )
            return None
        if not policy.pins_pad:
            return self.live
        ids = policy.pad_models or tuple(r.manifest.id for r in self.live.runners)
        missing = [m for m in ids if m not in self._runners]
        if missing:
            raise FailedPrecondition(
                f"PAD model {missing[0]!r} is not loaded by this deployment",
                "MODEL_NOT_CONFIGURED",
                {"model_id": missing[0], "loaded": ",".join(self.loaded)},
            )
        key = (tuple(sorted(set(ids))), policy.pad_threshold)
        if key not in self._scorers:
            threshold = policy.pad_threshold
            if threshold is None and not policy.pad_models:
                threshold = self.live.threshold
            self._scorers[key] = PadScorer([self._runners[m] for m in key[0]], threshold)
        return self._scorers[key]
