"""Settings of the liveness service, from `LIVENESS_*` environment variables."""

from __future__ import annotations

from dataclasses import dataclass

from identity_runtime.settings import ServiceSettings


@dataclass(frozen=True, kw_only=True)
class LivenessSettings(ServiceSettings):
    """Everything the liveness service reads from its environment."""
