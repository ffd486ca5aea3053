"""The analyst console's users, sessions and dashboard as the contract spells them."""

from __future__ import annotations

from google.api import httpbody_pb2

from identity_platform_api.kyc_tier.v1 import console_auth_pb2, dashboard_pb2
from identity_runtime.convert import enum_names, message
from services.kyc_tier import records
from services.kyc_tier.console import OpenedSession, SessionCaller
from services.kyc_tier.console_users import ConsoleUserView
from services.kyc_tier.console_webauthn import Ceremony
from services.kyc_tier.customers import CustomerView
from services.kyc_tier.flows.dashboard import ReviewQuery, TierEventQuery
from services.kyc_tier.flows.reviews import ReviewView
from services.kyc_tier.mapping.enums import (
    KIND_FROM_PROTO,
    KIND_TO_PROTO,
    REVIEW_STATUS_TO_PROTO,
    enum_name,
    reasons,
    when,
)
from services.kyc_tier.mapping.resources import customer, tier_event
from services.kyc_tier.paging import Page


def console_user(user: ConsoleUserView) -> console_auth_pb2.ConsoleUser:
    return message(console_auth_pb2.ConsoleUser, user, roles=list(user.roles))


def opened_session(opened: OpenedSession) -> console_auth_pb2.Session:
    return message(console_auth_pb2.Session, opened, user=console_user(opened.user))


def session_caller(caller: SessionCaller) -> console_auth_pb2.AuthenticateSessionResponse:
    return message(console_auth_pb2.AuthenticateSessionResponse, caller, roles=list(caller.roles))


REVIEW_STATUS_FROM_PROTO = enum_names(REVIEW_STATUS_TO_PROTO)


def review_item(item: ReviewView) -> dashboard_pb2.ReviewItem:
    return message(
        dashboard_pb2.ReviewItem,
        item,
        kind=KIND_TO_PROTO[item.kind],
        reasons=reasons(item.reasons),
        status=REVIEW_STATUS_TO_PROTO[item.status],
    )


def review_page(page: Page[ReviewView]) -> dashboard_pb2.ListReviewQueueResponse:
    return dashboard_pb2.ListReviewQueueResponse(
        items=[review_item(i) for i in page.items], next_page_token=page.next_page_token
    )


def search_page(page: Page[CustomerView]) -> dashboard_pb2.SearchCustomersResponse:
    return dashboard_pb2.SearchCustomersResponse(
        customers=[customer(c) for c in page.items], next_page_token=page.next_page_token
    )


def tier_event_query(request: dashboard_pb2.ListTierEventsRequest) -> TierEventQuery:
    return TierEventQuery(
        customer_id=request.customer_id,
        start_time=when(request.start_time),
        end_time=when(request.end_time),
    )


def tier_event_page(page: Page[records.TierChange]) -> dashboard_pb2.ListTierEventsResponse:
    return dashboard_pb2.ListTierEventsResponse(
        events=[tier_event(e) for e in page.items], next_page_token=page.next_page_token
    )


def csv_body(data: bytes) -> httpbody_pb2.HttpBody:
    return httpbody_pb2.HttpBody(content_type="text/csv; charset=utf-8", data=data)


def jpeg_body(data: bytes) -> httpbody_pb2.HttpBody:
    return httpbody_pb2.HttpBody(content_type="image/jpeg", data=data)


def ceremony(value: Ceremony) -> console_auth_pb2.BeginPasskeyAuthenticationResponse:
    return message(console_auth_pb2.BeginPasskeyAuthenticationResponse, value)


def review_query(request: dashboard_pb2.ListReviewQueueRequest) -> ReviewQuery:
    return ReviewQuery(
        status=enum_name(REVIEW_STATUS_FROM_PROTO, request.status, "status"),
        kind=enum_name(KIND_FROM_PROTO, request.kind, "kind"),
        customer_id=request.customer_id,
    )
