"""How the kyc-tier service is served (see identity_runtime.server)."""

from __future__ import annotations

from identity_runtime import mesh
from identity_runtime.server import ServiceSpec
from services.kyc_tier.bootstrap import build
from services.kyc_tier.servicer import registrations
from services.kyc_tier.settings import KycTierSettings

SPEC = ServiceSpec.from_mesh(
    mesh.KYC_TIER,
    settings_class=KycTierSettings,
    build=build,
    servicers=lambda core, settings: registrations(core),
)
