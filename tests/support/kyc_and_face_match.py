"""kyc-tier and face-match side by side, for the gateway tests that need
both (OAuth clients and tokens, console sessions); kept apart from
tests.support.face_match, which the benchmarks import, so that they do not
pull in kyc-tier's fakes."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from services.face_match.service import SPEC as FACE_MATCH
from services.kyc_tier.bootstrap import build
from services.kyc_tier.service import SPEC as KYC_TIER
from tests.support import kyc_tier_env, start_service
from tests.support.face_match import env
from tests.support.kyc_fakes import KycFakes


@contextlib.asynccontextmanager
async def with_kyc_tier(database_url: str, bucket: Path) -> AsyncIterator[dict[str, str]]:
    """kyc-tier (with fake ports) and face-match on port 0 over one database:
    their addresses by proto package, for the gateway."""
    fakes = KycFakes()

    async def build_with_fakes(settings: Any) -> Any:
        return await build(settings, overrides=fakes.overrides())

    kyc_tier = await start_service(
        dataclasses.replace(KYC_TIER, build=build_with_fakes), kyc_tier_env(database_url)
    )
    try:
        face_match = await start_service(FACE_MATCH, env(database_url, bucket))
        try:
            yield {"kyc_tier": kyc_tier.address, "face_match": face_match.address}
        finally:
            await face_match.stop(0)
    finally:
        await kyc_tier.stop(0)
