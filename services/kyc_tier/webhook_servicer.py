"""gRPC servicer of kyc-tier's webhook endpoints: convert, call the flow, convert."""

from __future__ import annotations

from typing import Any

from identity_platform_api.kyc_tier.v1 import webhooks_pb2, webhooks_pb2_grpc
from identity_runtime.context import require_org
from identity_runtime.listing import list_reply, org_page, page_reply
from services.kyc_tier.mapping import resources, responses
from services.kyc_tier.mapping.idempotent import idempotent
from services.kyc_tier.servicer import KycTierServicer


class WebhookServicer(KycTierServicer, webhooks_pb2_grpc.WebhookServiceServicer):
    async def ListWebhooks(
        self, request: webhooks_pb2.ListWebhooksRequest, _: Any
    ) -> webhooks_pb2.ListWebhooksResponse:
        found = await self.core.webhooks.list(require_org())
        return list_reply(webhooks_pb2.ListWebhooksResponse, found, webhooks=resources.webhook)

    @idempotent(webhooks_pb2.CreateWebhookResponse)
    async def CreateWebhook(
        self, request: webhooks_pb2.CreateWebhookRequest, _: Any
    ) -> webhooks_pb2.CreateWebhookResponse:
        created = await self.core.webhooks.create(
            require_org(), request.url, request.events, request.description
        )
        return responses.created_webhook(created)

    @idempotent(webhooks_pb2.TestWebhookResponse)
    async def TestWebhook(
        self, request: webhooks_pb2.TestWebhookRequest, _: Any
    ) -> webhooks_pb2.TestWebhookResponse:
        result = await self.core.webhooks.test(require_org(), request.webhook_id)
        return responses.webhook_delivery(result)

    @idempotent(webhooks_pb2.RotateWebhookSecretResponse)
    async def RotateWebhookSecret(
        self, request: webhooks_pb2.RotateWebhookSecretRequest, _: Any
    ) -> webhooks_pb2.RotateWebhookSecretResponse:
        rotated, expires = await self.core.webhooks.rotate(
            require_org(), request.webhook_id, request.overlap_seconds
        )
        return responses.rotated_webhook_secret(rotated, expires)

    @idempotent(webhooks_pb2.DisableWebhookResponse)
    async def DisableWebhook(
        self, request: webhooks_pb2.DisableWebhookRequest, _: Any
    ) -> webhooks_pb2.DisableWebhookResponse:
        return webhooks_pb2.DisableWebhookResponse(webhook=await self._set_active(request, False))

    @idempotent(webhooks_pb2.EnableWebhookResponse)
    async def EnableWebhook(
        self, request: webhooks_pb2.EnableWebhookRequest, _: Any
    ) -> webhooks_pb2.EnableWebhookResponse:
        return webhooks_pb2.EnableWebhookResponse(webhook=await self._set_active(request, True))

    async def _set_active(
        self,
        request: webhooks_pb2.DisableWebhookRequest | webhooks_pb2.EnableWebhookRequest,
        active: bool,
    ) -> webhooks_pb2.Webhook:
        """Disabling and enabling differ only in the state asked for."""
        found = await self.core.webhooks.set_active(require_org(), request.webhook_id, active)
        return resources.webhook(found)

    async def ListWebhookDeliveries(
        self, request: webhooks_pb2.ListWebhookDeliveriesRequest, _: Any
    ) -> webhooks_pb2.ListWebhookDeliveriesResponse:
        page = await org_page(self.core.webhook_log.deliveries, request.webhook_id, request)
        return page_reply(
            webhooks_pb2.ListWebhookDeliveriesResponse, page, deliveries=resources.webhook_delivery
        )

    @idempotent(webhooks_pb2.RedeliverWebhookDeliveryResponse)
    async def RedeliverWebhookDelivery(
        self, request: webhooks_pb2.RedeliverWebhookDeliveryRequest, _: Any
    ) -> webhooks_pb2.RedeliverWebhookDeliveryResponse:
        queued = await self.core.webhook_log.redeliver(
            require_org(), request.webhook_id, request.delivery_id
        )
        return webhooks_pb2.RedeliverWebhookDeliveryResponse(
            delivery=resources.webhook_delivery(queued)
        )

    async def UpdateWebhook(
        self, request: webhooks_pb2.UpdateWebhookRequest, _: Any
    ) -> webhooks_pb2.UpdateWebhookResponse:
        found = await self.core.webhook_changes.update(
            require_org(),
            request.webhook_id,
            request.url if request.HasField("url") else None,
            request.events,
            request.description if request.HasField("description") else None,
        )
        return webhooks_pb2.UpdateWebhookResponse(webhook=resources.webhook(found))

    async def DeleteWebhook(
        self, request: webhooks_pb2.DeleteWebhookRequest, _: Any
    ) -> webhooks_pb2.DeleteWebhookResponse:
        await self.core.webhook_changes.delete(require_org(), request.webhook_id)
        return webhooks_pb2.DeleteWebhookResponse()
