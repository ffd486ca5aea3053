"""The listing RPCs' servicer side every service shares (identity_runtime.listing)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from identity_platform_api.kyc_tier.v1 import webhooks_pb2
from identity_runtime import context, page_tokens
from identity_runtime.errors import Unauthenticated
from identity_runtime.listing import list_reply, org_page, page_reply


@dataclass(frozen=True)
class Listed:
    items: list[str]
    next_page_token: str


def _webhook(webhook_id: str) -> webhooks_pb2.Webhook:
    return webhooks_pb2.Webhook(webhook_id=webhook_id)


def _delivery(delivery_id: str) -> webhooks_pb2.WebhookDelivery:
    return webhooks_pb2.WebhookDelivery(delivery_id=delivery_id)


def test_org_page_asks_the_listing_for_the_callers_org_and_the_requested_page() -> None:
    asked: list[tuple[str, str, int, str]] = []

    async def listing(org_id: str, webhook_id: str, size: int, token: str) -> Listed:
        asked.append((org_id, webhook_id, size, token))
        return Listed(["dlv_1"], "next")

    request = webhooks_pb2.ListWebhookDeliveriesRequest(webhook_id="whk_1", page_size=20)
    request.page_token = page_tokens.seal("tok", request, "org_1")
    bound = context.bind(context.CallContext(request_id="req_1", org_id="org_1"))
    try:
        page = asyncio.run(org_page(listing, request.webhook_id, request))
    finally:
        context.reset(bound)
    # The listing sees its own position; the caller gets the next one bound.
    assert asked == [("org_1", "whk_1", 20, "tok")]
    assert page.items == ["dlv_1"]
    assert page_tokens.open_token(page.next_page_token, request, "org_1") == "next"


def test_org_page_refuses_a_call_without_an_organisation() -> None:
    async def listing(org_id: str, what: str, size: int, token: str) -> Listed:
        raise AssertionError("a call without an organisation lists nothing")

    request = webhooks_pb2.ListWebhookDeliveriesRequest(webhook_id="whk_1")
    with pytest.raises(Unauthenticated):
        asyncio.run(org_page(listing, request.webhook_id, request))


def test_list_reply_fills_the_named_repeated_field_with_each_item_converted() -> None:
    reply = list_reply(webhooks_pb2.ListWebhooksResponse, ["whk_1", "whk_2"], webhooks=_webhook)
    assert reply == webhooks_pb2.ListWebhooksResponse(
        webhooks=[_webhook("whk_1"), _webhook("whk_2")]
    )


def test_page_reply_carries_the_items_and_the_next_page_token() -> None:
    page = Listed(["dlv_1", "dlv_2"], "older")
    reply = page_reply(webhooks_pb2.ListWebhookDeliveriesResponse, page, deliveries=_delivery)
    assert list(reply.deliveries) == [_delivery("dlv_1"), _delivery("dlv_2")]
    assert reply.next_page_token == "older"
    last = page_reply(
        webhooks_pb2.ListWebhookDeliveriesResponse, Listed([], ""), deliveries=_delivery
    )
    assert last == webhooks_pb2.ListWebhookDeliveriesResponse()


def test_a_listing_reply_fills_exactly_one_repeated_field() -> None:
    with pytest.raises(TypeError, match="one repeated field"):
        list_reply(webhooks_pb2.ListWebhooksResponse, [])
    with pytest.raises(TypeError, match="one repeated field"):
        page_reply(
            webhooks_pb2.ListWebhookDeliveriesResponse,
            Listed([], ""),
            deliveries=_delivery,
            webhooks=_webhook,
        )
