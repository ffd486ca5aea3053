"""Settings of the matching service, from `MATCHING_*` environment variables."""

from __future__ import annotations

from dataclasses import dataclass

from identity_runtime.settings import ServiceSettings


@dataclass(frozen=True, kw_only=True)
class MatchingSettings(ServiceSettings):
    """Everything the matching service reads from its environment."""
