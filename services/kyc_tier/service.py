"""How the kyc-tier service is served (see identity_runtime.server)."""

from __future__ import annotations

from identity_runtime import mesh
from identity_runtime.interceptors import Stage
from identity_runtime.meshauth import API_KEY_ISSUER, Caller
from identity_runtime.server import ServiceSpec
from services.kyc_tier import (
    console_roles,
    console_servicer,
    org_servicer,
    sdk_servicer,
    servicer,
    webhook_servicer,
)
from services.kyc_tier.bootstrap import KycTierCore, build
from services.kyc_tier.settings import KycTierSettings


async def api_key_caller(core: KycTierCore, secret: str) -> Caller:
    """An internal caller's API key, checked here as the gateway has it checked:
    the same organisation and scopes (UNAUTHENTICATED / API_KEY_INVALID otherwise)."""
    found = await core.api_keys.authenticate(secret)
    return Caller(
        issuer=API_KEY_ISSUER,
        org_id=found.org_id,
        actor=f"api_key:{found.api_key_id}",
        scopes=tuple(found.scopes),
    )


def own_stages(core: KycTierCore) -> list[Stage]:
    """kyc-tier's stages of the server chain: console roles (console_roles.py)."""
    return [console_roles.ConsoleRoleInterceptor(lambda: core.console_users.store)]


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
        webhook_servicer.WebhookServicer,
        console_servicer.DashboardServicer,
        console_servicer.ConsoleAuthServicer,
        sdk_servicer.SdkSessionServicer,
        org_servicer.OrgSettingsServicer,
    ],
    api_keys=api_key_caller,
    # Erasures are counted in kyc-tier's database (flows/erasure.py): an
    # erased customer's erasure asked again is no new erasure.
    own_rate_limits=frozenset({"identity.kyc_tier.v1.CustomerService/EraseCustomer"}),
    stages=own_stages,
)
