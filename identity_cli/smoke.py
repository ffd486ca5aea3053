"""`identity smoke`: a release's smoke test through its gateway (the chart's
`helm test` hook runs it).

1. `GET /api/healthz` with an internal-scope API key: every service SERVING.
2. `POST /api/identity/auth/step-up` for a customer that does not exist:
   the gateway authenticates the key, kyc-tier looks the customer up in its
   database and refuses with 404 CUSTOMER_NOT_FOUND. Any other answer (401/403: the
   key; 5xx: a service or the database) fails the smoke.

The API key comes from IDENTITY_SMOKE_API_KEY (a Secret in the chart) and is
never printed. Exit status 0 when both pass, 1 otherwise; one line per check
(`ok` or `FAIL <check>: <why>`), also when the gateway cannot be reached. A
health check that fails names the services that are not SERVING.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import uuid
from typing import Any

from identity_cli.errors import CliError

API_KEY_ENV = "IDENTITY_SMOKE_API_KEY"
# Customer ids nobody has: kyc-tier answers 404 CUSTOMER_NOT_FOUND.
SMOKE_CUSTOMER_PREFIX = "cus_smoke_"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "smoke", help="health and step-up smoke test of a release, through its gateway"
    )
    parser.add_argument("--gateway-url", required=True, help="e.g. http://identity-gateway:80")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.set_defaults(handler=run)


async def checks(client: Any) -> list[tuple[str, bool, str]]:
    """(check, passed, detail) of each step, through `client` (an
    httpx.AsyncClient on the gateway, carrying the API key). A check the
    gateway does not answer (refused, unresolvable, timed out) fails with
    why; the next check still runs."""
    results: list[tuple[str, bool, str]] = []
    health = await _send(client, "GET", "/api/healthz")
    if isinstance(health, str):
        results.append(("health", False, health))
    else:
        body = _json_object(health)
        serving = health.status_code == 200 and str(body.get("status", "")).upper() == "SERVING"
        detail = f"HTTP {health.status_code} {body.get('status', '')}".strip()
        failing = "" if serving else _failing_services(body)
        results.append(("health", serving, f"{detail}: {failing}" if failing else detail))
    step_up = await _send(client, "POST", "/api/identity/auth/step-up", json=_step_up_body())
    if isinstance(step_up, str):
        results.append(("step-up", False, step_up))
        return results
    error = _json_object(step_up).get("error")
    error = error if isinstance(error, dict) else {}
    reason = f"{error.get('status', '')} {error.get('reason', '')}".strip()
    results.append(
        (
            "step-up",
            step_up.status_code == 404 and error.get("reason") == "CUSTOMER_NOT_FOUND",
            f"HTTP {step_up.status_code} {reason}".strip(),
        )
    )
    return results


async def _send(client: Any, method: str, path: str, **kwargs: Any) -> Any:
    """The response, or (a string) why there is none."""
    import httpx

    try:
        return await client.request(method, path, **kwargs)
    except httpx.TimeoutException:
        return f"no answer from the gateway within the timeout ({method} {path})"
    except httpx.ConnectError as exc:
        return f"cannot connect to the gateway: {_first_line(exc)}"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    return next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def _json_object(response: Any) -> dict[str, Any]:
    """The response's JSON object ({} when it is not one)."""
    if not _is_json(response):
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _failing_services(body: dict[str, Any]) -> str:
    """`matching UNREACHABLE, audit NOT_SERVING` from /api/healthz's
    per-service list (an internal-scope key sees it), "" without one."""
    services = body.get("services")
    if not isinstance(services, list):
        return ""
    failing = [
        f"{service.get('name', '?')} {service.get('status', '') or 'UNKNOWN'}"
        for service in services
        if isinstance(service, dict) and service.get("status") != "SERVING"
    ]
    return ", ".join(failing)


def _step_up_body() -> dict[str, Any]:
    """A well-formed step-up (so that it passes validation and reaches the
    customer lookup) for a customer id nobody has; nothing is analysed."""
    from datetime import UTC, datetime

    token = uuid.uuid4().hex
    return {
        "customerId": f"{SMOKE_CUSTOMER_PREFIX}{token[:12]}",
        "challengeId": f"chl_smoke_{token[:12]}",
        "action": "smoke",
        "bundle": {
            "frames": [{"image": {"data": base64.b64encode(b"smoke").decode()}, "offsetMs": 0}],
            "attestation": {
                "deviceId": "helm-test",
                "nonce": token,
                "signature": base64.b64encode(b"smoke").decode(),
                "capturedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        },
    }


def _is_json(response: Any) -> bool:
    return "json" in response.headers.get("content-type", "")


def run(args: argparse.Namespace) -> int:
    import asyncio

    import httpx

    api_key = os.environ.get(API_KEY_ENV, "")
    if not api_key:
        print(f"identity smoke: set {API_KEY_ENV} (an internal-scope API key)", file=sys.stderr)
        return 2

    if not args.gateway_url.startswith(("http://", "https://")):
        raise CliError(f"--gateway-url {args.gateway_url}: is not an http:// or https:// URL")

    async def smoke() -> list[tuple[str, bool, str]]:
        async with httpx.AsyncClient(
            base_url=args.gateway_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=args.timeout,
        ) as client:
            return await checks(client)

    try:
        results = asyncio.run(smoke())
    except httpx.InvalidURL as exc:
        raise CliError(f"--gateway-url {args.gateway_url}: {exc}") from exc
    for name, passed, detail in results:
        print(f"{'ok  ' if passed else 'FAIL'} {name}: {detail}")
    return 0 if all(passed for _, passed, _ in results) else 1
