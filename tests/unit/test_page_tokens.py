"""Page tokens bound to their listing, organisation and filter (AIP-158):
identity_runtime.page_tokens and the servicer side that applies it."""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import dataclass

import pytest

from identity_platform_api.audit.v1 import audit_pb2
from identity_platform_api.kyc_tier.v1 import (
    attempts_pb2,
    customers_pb2,
    dashboard_pb2,
    webhooks_pb2,
)
from identity_runtime import context
from identity_runtime.errors import InvalidArgument
from identity_runtime.listing import filtered_org_page, org_page
from identity_runtime.page_tokens import open_token, seal

URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")
# A position token as kyc-tier's listings make them (base64 of [created_at, id]).
POSITION = "WyIyMDI2LTExLTI3VDEwOjAwOjAwKzAwOjAwIiwgImN1c18xIl0"


def refused(token: str, request: object, org_id: str) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        open_token(token, request, org_id)  # type: ignore[arg-type]
    assert caught.value.reason == "INVALID_FIELD"
    assert caught.value.metadata == {"field": "page_token"}
    return caught.value


def test_a_token_opens_on_the_listing_and_filter_that_made_it() -> None:
    request = attempts_pb2.ListAttemptsRequest(kind=2, outcome=1, page_size=5)
    token = seal(POSITION, request, "org_1")
    assert URL_SAFE.fullmatch(token) and POSITION not in token
    # The next page's request: same filter, the token, another page size.
    again = attempts_pb2.ListAttemptsRequest(outcome=1, kind=2, page_size=50, page_token=token)
    assert open_token(token, again, "org_1") == POSITION


def test_the_last_page_and_the_first_page_have_no_token() -> None:
    request = customers_pb2.ListCustomersRequest()
    assert seal("", request, "org_1") == ""
    assert open_token("", request, "org_1") == ""


def test_a_token_of_another_listing_is_refused() -> None:
    customer = attempts_pb2.ListCustomerAttemptsRequest(customer_id="cus_1")
    token = seal(POSITION, customer, "org_1")
    # The same customer through another listing with the same filter field.
    timeline = dashboard_pb2.ListCustomerVerificationsRequest(customer_id="cus_1")
    assert "another listing or filter" in refused(token, timeline, "org_1").message
    every = seal(POSITION, attempts_pb2.ListAttemptsRequest(), "org_1")
    refused(every, customers_pb2.ListCustomersRequest(), "org_1")
    refused(every, dashboard_pb2.ListTierEventsRequest(), "org_1")
    refused(every, audit_pb2.QueryEntriesRequest(), "org_1")


def test_a_token_is_refused_when_the_filter_changes() -> None:
    token = seal(POSITION, customers_pb2.ListCustomersRequest(tier=1), "org_1")
    refused(token, customers_pb2.ListCustomersRequest(tier=2), "org_1")
    refused(token, customers_pb2.ListCustomersRequest(), "org_1")
    deliveries = seal(POSITION, webhooks_pb2.ListWebhookDeliveriesRequest(webhook_id="whk_1"), "o")
    refused(deliveries, webhooks_pb2.ListWebhookDeliveriesRequest(webhook_id="whk_2"), "o")


def test_a_token_of_another_organisation_is_refused() -> None:
    request = customers_pb2.ListCustomersRequest()
    refused(seal(POSITION, request, "org_1"), request, "org_2")


def test_malformed_tampered_and_unbound_tokens_are_refused() -> None:
    request = customers_pb2.ListCustomersRequest()
    token = seal(POSITION, request, "org_1")
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[3] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    assert "another listing" in refused(tampered, request, "org_1").message
    for bad in ("garbage!", "AQ", "%%%", token[:10]):
        refused(bad, request, "org_1")
    # A token issued before the binding: the bare position, refused as malformed.
    assert "not a token this API returned" in refused(POSITION, request, "org_1").message


@dataclass(frozen=True)
class Listed:
    items: list[str]
    next_page_token: str


def _in_org(org_id: str, call: object) -> object:
    bound = context.bind(context.CallContext(request_id="req_1", org_id=org_id))
    try:
        return asyncio.run(call)  # type: ignore[arg-type]
    finally:
        context.reset(bound)


def test_the_servicer_side_pages_through_and_refuses_a_changed_filter() -> None:
    seen: list[str] = []

    async def listing(org_id: str, what: str, size: int, token: str) -> Listed:
        seen.append(token)
        return Listed([what], "" if token else POSITION)

    first = attempts_pb2.ListCustomerAttemptsRequest(customer_id="cus_1", page_size=1)
    page = _in_org("org_1", filtered_org_page(listing, lambda r: r.customer_id, first))
    assert isinstance(page, Listed) and page.next_page_token
    second = attempts_pb2.ListCustomerAttemptsRequest(
        customer_id="cus_1", page_size=7, page_token=page.next_page_token
    )
    last = _in_org("org_1", filtered_org_page(listing, lambda r: r.customer_id, second))
    assert last == Listed(["cus_1"], "")
    assert seen == ["", POSITION]
    changed = attempts_pb2.ListCustomerAttemptsRequest(
        customer_id="cus_2", page_token=page.next_page_token
    )
    with pytest.raises(InvalidArgument):
        _in_org("org_1", filtered_org_page(listing, lambda r: r.customer_id, changed))
    elsewhere = webhooks_pb2.ListWebhookDeliveriesRequest(
        webhook_id="cus_1", page_token=page.next_page_token
    )
    with pytest.raises(InvalidArgument):
        _in_org("org_1", org_page(listing, elsewhere.webhook_id, elsewhere))
    assert seen == ["", POSITION]
