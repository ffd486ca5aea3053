"""An organisation's liveness switches, the same value on both sides of the
contract's `LivenessPolicy`: kyc-tier keeps one per organisation
(org_liveness_policies) and sends it with each check; liveness applies it to
that check only (services/liveness/policy.py says what each switch does)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class LivenessPolicy:
    # PAD models the organisation is pinned to (fused); () = the live set.
    pad_models: tuple[str, ...] = ()
    # The fused live-score threshold; None = the deployment's.
    pad_threshold: float | None = None
    flash_check: bool = True
    shadow: bool = True

    @property
    def pins_pad(self) -> bool:
        return bool(self.pad_models) or self.pad_threshold is not None


DEFAULT_LIVENESS_POLICY = LivenessPolicy()
