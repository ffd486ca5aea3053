"""How the kyc-tier service is served (see identity_runtime.server)."""

from __future__ import annotations

from identity_runtime import mesh
from identity_runtime.server import ServiceSpec
from services.kyc_tier import servicer
from services.kyc_tier.bootstrap import build
from services.kyc_tier.settings import KycTierSettings

# The contract's other kyc-tier services (webhooks, console sign-in) and
# the dashboard's RPCs other than DecideReview answer UNIMPLEMENTED until
# their issues land.
SPEC = ServiceSpec.from_mesh(
    mesh.KYC_TIER,
    settings_class=KycTierSettings,
    build=build,
    servicers=[
        servicer.ApiKeyServicer,
        servicer.CustomerServicer,
        servicer.KtpServicer,
        servicer.FaceServicer,
        servicer.StepUpServicer,
        servicer.KycServicer,
        servicer.DeviceServicer,
        servicer.AttemptServicer,
        servicer.DashboardServicer,
    ],
)
