"""`identity smoke`: a release's smoke test through its gateway (the chart's
`helm test` hook runs it).

1. `GET /api/healthz` with an internal-scope API key: every service SERVING.
2. `POST /api/identity/auth/step-up` for a customer that does not exist:
   the gateway authenticates the key, kyc-tier looks the customer up in its
   database and refuses with 404 CUSTOMER_NOT_FOUND. Any other answer (401/403: the
   key; 5xx: a service or the database) fails the smoke.

The API key comes from IDENTITY_SMOKE_API_KEY (a Secret in the chart) and is
never printed. Exit status 0 when both pass, 1 otherwise; one line per check.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import uuid
from typing import Any

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
    httpx.AsyncClient on the gateway, carrying the API key)."""
    results: list[tuple[str, bool, str]] = []
    health = await client.get("/api/healthz")
    body: Any = health.json() if _is_json(health) else {}
    serving = health.status_code == 200 and str(body.get("status", "")).upper() == "SERVING"
    results.append(("health", serving, f"HTTP {health.status_code} {body.get('status', '')}"))
    step_up = await client.post("/api/identity/auth/step-up", json=_step_up_body())
    error = (step_up.json() if _is_json(step_up) else {}).get("error") or {}
    reason = f"{error.get('status', '')} {error.get('reason', '')}".strip()
    results.append(
        (
            "step-up",
            step_up.status_code == 404 and error.get("reason") == "CUSTOMER_NOT_FOUND",
            f"HTTP {step_up.status_code} {reason}".strip(),
        )
    )
    return results


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

    async def smoke() -> list[tuple[str, bool, str]]:
        async with httpx.AsyncClient(
            base_url=args.gateway_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=args.timeout,
        ) as client:
            return await checks(client)

    results = asyncio.run(smoke())
    for name, passed, detail in results:
        print(f"{'ok  ' if passed else 'FAIL'} {name}: {detail}")
    return 0 if all(passed for _, passed, _ in results) else 1
