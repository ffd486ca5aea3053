"""`identity smoke` (the chart's `helm test` hook): one line per check, exit
1 on a failure, also when the gateway cannot be reached (black-box probe 7,
D8: an httpx traceback), and a failed health check names the services."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import httpx
import pytest

from identity_cli.main import main
from identity_cli.smoke import API_KEY_ENV, checks

NOT_FOUND = {"error": {"status": "NOT_FOUND", "reason": "CUSTOMER_NOT_FOUND"}}


def run_checks(handler: Callable[[httpx.Request], httpx.Response]) -> list[tuple[str, bool, str]]:
    async def go() -> list[tuple[str, bool, str]]:
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await checks(client)

    return asyncio.run(go())


def test_a_healthy_release_passes_both_checks() -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/healthz":
            return httpx.Response(200, json={"status": "SERVING", "services": []})
        return httpx.Response(404, json=NOT_FOUND)

    assert run_checks(gateway) == [
        ("health", True, "HTTP 200 SERVING"),
        ("step-up", True, "HTTP 404 NOT_FOUND CUSTOMER_NOT_FOUND"),
    ]


def test_a_failed_health_check_names_the_services_that_are_not_serving() -> None:
    services = [
        {"name": "liveness", "status": "SERVING"},
        {"name": "matching", "status": "UNREACHABLE", "detail": "DEADLINE_EXCEEDED"},
        {"name": "audit", "status": "NOT_SERVING"},
    ]

    def gateway(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/healthz":
            return httpx.Response(503, json={"status": "NOT_SERVING", "services": services})
        return httpx.Response(404, json=NOT_FOUND)

    health, step_up = run_checks(gateway)
    assert health == (
        "health",
        False,
        "HTTP 503 NOT_SERVING: matching UNREACHABLE, audit NOT_SERVING",
    )
    assert step_up[1]


def test_without_the_per_service_list_the_status_alone_is_shown() -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/healthz":
            return httpx.Response(503, json={"status": "NOT_SERVING"})
        return httpx.Response(502, text="<html>bad gateway</html>")

    assert run_checks(gateway) == [
        ("health", False, "HTTP 503 NOT_SERVING"),
        ("step-up", False, "HTTP 502"),
    ]


@pytest.mark.parametrize(
    ("raised", "why"),
    [
        (httpx.ConnectError("All connection attempts failed"), "cannot connect to the gateway"),
        (httpx.ConnectTimeout("timed out"), "no answer from the gateway within the timeout"),
        (httpx.RemoteProtocolError("Server disconnected"), "RemoteProtocolError"),
    ],
)
def test_a_gateway_that_does_not_answer_fails_each_check_with_why(
    raised: httpx.HTTPError, why: str
) -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        raise raised

    results = run_checks(gateway)
    assert [(name, passed) for name, passed, _ in results] == [
        ("health", False),
        ("step-up", False),
    ]
    assert all(why in detail for _, _, detail in results), results


def test_the_command_prints_one_fail_line_per_check_when_nothing_listens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv(API_KEY_ENV, "idk_smoke_test_key")
    assert main(["smoke", "--gateway-url", f"http://127.0.0.1:{closed}", "--timeout", "5"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "FAIL health: cannot connect to the gateway: All connection attempts failed",
        "FAIL step-up: cannot connect to the gateway: All connection attempts failed",
    ]
    assert "Traceback" not in err and "idk_smoke_test_key" not in out + err


@pytest.mark.parametrize("url", ["gateway:80", "http://[::1"])
def test_a_gateway_url_that_is_not_one_is_a_user_error(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(API_KEY_ENV, "idk_smoke_test_key")
    assert main(["smoke", "--gateway-url", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"identity smoke: --gateway-url {url}:") and len(err.splitlines()) == 1
