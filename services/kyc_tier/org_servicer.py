"""gRPC servicer of the organisation's settings: convert, call the flow, convert."""

from __future__ import annotations

from typing import Any

from identity_platform_api.kyc_tier.v1 import orgs_pb2, orgs_pb2_grpc
from identity_runtime.context import require_org
from services.kyc_tier.mapping.orgs import org_settings
from services.kyc_tier.servicer import KycTierServicer


class OrgSettingsServicer(KycTierServicer, orgs_pb2_grpc.OrgSettingsServiceServicer):
    async def GetOrgSettings(
        self, request: orgs_pb2.GetOrgSettingsRequest, _: Any
    ) -> orgs_pb2.GetOrgSettingsResponse:
        found = await self.core.org_settings.get(require_org())
        return orgs_pb2.GetOrgSettingsResponse(settings=org_settings(found))

    async def SetMatchThreshold(
        self, request: orgs_pb2.SetMatchThresholdRequest, _: Any
    ) -> orgs_pb2.SetMatchThresholdResponse:
        changed = await self.core.org_settings.set_match_threshold(
            require_org(),
            request.threshold if request.HasField("threshold") else None,
            request.use_default,
        )
        return orgs_pb2.SetMatchThresholdResponse(settings=org_settings(changed))

    async def SetDukcapilEvidenceSecret(
        self, request: orgs_pb2.SetDukcapilEvidenceSecretRequest, _: Any
    ) -> orgs_pb2.SetDukcapilEvidenceSecretResponse:
        changed = await self.core.org_settings.set_evidence_secret(
            require_org(), request.secret, request.clear
        )
        return orgs_pb2.SetDukcapilEvidenceSecretResponse(settings=org_settings(changed))

    async def RotateDukcapilEvidenceSecret(
        self, request: orgs_pb2.RotateDukcapilEvidenceSecretRequest, _: Any
    ) -> orgs_pb2.RotateDukcapilEvidenceSecretResponse:
        changed, secret = await self.core.org_settings.rotate_evidence_secret(require_org())
        return orgs_pb2.RotateDukcapilEvidenceSecretResponse(
            settings=org_settings(changed), secret=secret
        )

    async def SetDefaultWebhook(
        self, request: orgs_pb2.SetDefaultWebhookRequest, _: Any
    ) -> orgs_pb2.SetDefaultWebhookResponse:
        changed = await self.core.org_settings.set_default_webhook(
            require_org(), request.webhook_id
        )
        return orgs_pb2.SetDefaultWebhookResponse(settings=org_settings(changed))
