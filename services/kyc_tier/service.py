"""How the kyc-tier service is served (see identity_runtime.server)."""

from __future__ import annotations

from identity_runtime import descriptors
from identity_runtime.server import ServiceSpec
from services.kyc_tier.bootstrap import build
from services.kyc_tier.servicer import registrations
from services.kyc_tier.settings import KycTierSettings

SPEC = ServiceSpec(
    name="kyc-tier",
    settings_class=KycTierSettings,
    env_prefix="KYC_TIER",
    service_names=[
        s.full_name
        for s in descriptors.services()
        if descriptors.service_package(s.full_name) == "kyc_tier"
    ],
    build=build,
    servicers=lambda core, settings: registrations(core),  # type: ignore[arg-type]
)
