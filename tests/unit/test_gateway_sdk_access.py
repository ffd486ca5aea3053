"""The gateway's SDK session rules without a network (gateway/sdk_access.py):
which routes a token opens, how a token is recognised, and the preflight
origin cache."""

from __future__ import annotations

import pytest

from gateway import sdk_access
from gateway.auth import Principal
from gateway.errors import GatewayError
from gateway.routing import build_routes
from services.audit.chain import Draft, validate_draft

TOKEN = "sdk_" + "a2" * 16


def test_the_token_opens_the_capture_routes_and_the_status_read_only() -> None:
    opened = {r.full_name.split(".")[-1] for r in build_routes() if r.sdk_session}
    assert opened == {
        "DeviceService/RegisterDevice",
        "KtpService/IssueKtpChallenge",
        "KtpService/SubmitKtpCapture",
        "FaceService/IssueFlashChallenge",
        "FaceService/CheckFaceLiveness",
        "StepUpService/StepUp",
        "KycService/GetKycStatus",
    }
    for route in build_routes():
        if route.sdk_session:
            assert route.scope == "public"
            assert "customer_id" in route.method.input_type.fields_by_name


@pytest.mark.parametrize(
    ("authorization", "api_keys", "expected"),
    [
        ([f"Bearer {TOKEN}"], [], TOKEN),
        ([f"bearer  {TOKEN} "], [], TOKEN),
        (["Bearer idk_abcdefghijkl"], [], None),
        (["Bearer a.b.c"], [], None),
        ([], [], None),
        ([f"Bearer {TOKEN}", f"Bearer {TOKEN}"], [], None),
        ([f"Basic {TOKEN}"], [], None),
    ],
)
def test_a_token_is_recognised_by_its_prefix(
    authorization: list[str], api_keys: list[str], expected: str | None
) -> None:
    assert sdk_access.presented_token(authorization, api_keys) == expected


@pytest.mark.parametrize(
    ("authorization", "api_keys"),
    [
        (["Bearer sdk_short"], []),
        ([f"Bearer {TOKEN}!"], []),
        ([f"Bearer {TOKEN.upper().replace('SDK_', 'sdk_')}"], []),
        ([f"Bearer {TOKEN}"], ["idk_abcdefghijkl"]),
    ],
)
def test_a_malformed_token_or_a_token_with_a_key_is_refused(
    authorization: list[str], api_keys: list[str]
) -> None:
    with pytest.raises(GatewayError) as refused:
        sdk_access.presented_token(authorization, api_keys)
    assert refused.value.code == "UNAUTHENTICATED"
    assert refused.value.reason == "SDK_SESSION_INVALID"
    assert TOKEN not in refused.value.message


async def test_preflight_answers_about_an_origin_are_kept_a_few_seconds() -> None:
    asked: list[str] = []
    now = [100.0]

    async def source(origin: str) -> bool:
        asked.append(origin)
        return origin == "https://a.example"

    known = sdk_access.KnownOrigins(source, clock=lambda: now[0])
    assert await known.allowed("https://a.example") is True
    assert await known.allowed("https://b.example") is False
    assert await known.allowed("https://a.example") is True
    assert asked == ["https://a.example", "https://b.example"]
    now[0] += sdk_access.ORIGIN_CACHE_SECONDS + 0.1
    assert await known.allowed("https://a.example") is True
    assert asked[-1] == "https://a.example" and len(asked) == 3
    assert await known.allowed("https://" + "x" * 300) is False
    assert len(asked) == 3


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
        ("https://ID.example.com", "id.example.com", True),
        ("http://127.0.0.1:8081", "127.0.0.1:8080", False),
        ("https://evil.example", "id.example.com", False),
        ("null", "id.example.com", False),
        ("http://id.example.com", None, False),
    ],
)
def test_a_same_origin_page_is_recognised_by_its_host(
    origin: str, host: str | None, same: bool
) -> None:
    assert sdk_access.same_origin(origin, host) is same


@pytest.mark.parametrize(
    "principal",
    [
        Principal("org_a", "key_1", frozenset({"public"})),
        Principal("org_a", "fmc_1", frozenset({"public"}), kind="oauth_client"),
        Principal("org_a", "sdks_1", frozenset({"public"}), kind=sdk_access.KIND),
        Principal("org_a", "", frozenset(), console_user_id="usr_1"),
    ],
    ids=lambda p: p.actor.split(":")[0],
)
def test_every_gateway_principal_is_an_actor_the_audit_chain_accepts(principal: Principal) -> None:
    """probe5 P5-3: the chain refused `sdk_session:` actors, so everything a
    capture-SDK session did was set aside in kyc-tier's outbox, never chained."""
    draft = Draft("org_a", principal.actor, "device.register", "customer:cus_1", "success", "r")
    assert validate_draft(draft).actor == principal.actor
