"""Builds the matching core from settings: the one place that chooses implementations."""

from __future__ import annotations

from identity_runtime.server import Core
from services.matching.settings import MatchingSettings


class MatchingCore(Core):
    """The matching service's domain objects."""


async def build(settings: MatchingSettings) -> MatchingCore:
    return MatchingCore()
