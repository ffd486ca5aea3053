"""The REST API for a partner backend, over httpx.

Every call returns the decoded JSON answer or raises `ApiError` (the error
body: HTTP status, gRPC `status`, `reason`, `metadata`, `request_id`);
`reason` is an open string: a reason this client does not know still parses.

Retries are safe by construction:

- GETs are retried;
- a capture (KTP capture, liveness, match by liveness, step-up) is resent
  with the very same bundle: the server treats the same nonce and bundle as
  the same request and answers the original verification;
- every other POST carries an `Idempotency-Key` (one per call, the same on
  each retry), so the server answers the first response again.

Only failures that may be transient are retried: transport errors, 429 and
503 (after `Retry-After`, capped), 502 and 504; with exponential backoff and
jitter, at most `max_attempts` tries.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRIED_STATUSES = frozenset({429, 502, 503, 504})
# Captures: idempotent by their nonce (the bundle is resent as is).
CAPTURE_PATHS = frozenset(
    {
        "/api/identity/document/ktp/capture",
        "/api/identity/face/liveness",
        "/api/identity/auth/step-up",
    }
)


@dataclass
class ApiError(Exception):
    """An error answer of the API (docs/gateway.md, "Errors")."""

    http_status: int
    status: str
    reason: str
    message: str
    metadata: dict[str, str] = field(default_factory=dict)
    request_id: str = ""

    def __str__(self) -> str:
        return f"{self.http_status} {self.status}/{self.reason}: {self.message}"

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            error = response.json()["error"]
            return cls(
                response.status_code,
                str(error.get("status", "")),
                str(error.get("reason", "")),
                str(error.get("message", "")),
                {str(k): str(v) for k, v in (error.get("metadata") or {}).items()},
                str(error.get("requestId", "")),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls(response.status_code, "UNKNOWN", "", response.text[:200])


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    initial_backoff: float = 0.2
    max_backoff: float = 5.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after and retry_after.isdigit():
            return min(float(retry_after), self.max_backoff)
        ceiling = min(self.max_backoff, self.initial_backoff * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)


class IdentityClient:
    """An async client of the REST API with one API key.

    `base_url` is the gateway (`http://127.0.0.1:8080` under `identity up`);
    pass `http` to bring your own `httpx.AsyncClient` (its base URL is used)."""

    def __init__(
        self,
        base_url: str = "",
        api_key: str = "",
        *,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._own = http is None
        self.http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self.api_key = api_key
        self.retry = retry or RetryPolicy()

    async def __aenter__(self) -> IdentityClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own:
            await self.http.aclose()

    # -- transport ---------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        if method == "POST" and path not in CAPTURE_PATHS:
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        for attempt in range(self.retry.max_attempts):
            last = attempt == self.retry.max_attempts - 1
            try:
                response = await self.http.request(
                    method,
                    path,
                    json=dict(body) if body is not None else None,
                    params=params,
                    headers=headers,
                )
            except httpx.TransportError:
                if last:
                    raise
                await asyncio.sleep(self.retry.delay(attempt, None))
                continue
            if response.status_code in RETRIED_STATUSES and not last:
                await asyncio.sleep(self.retry.delay(attempt, response.headers.get("retry-after")))
                continue
            if response.status_code >= 400:
                raise ApiError.from_response(response)
            return response.json()
        raise AssertionError("unreachable")  # pragma: no cover

    async def post(self, path: str, body: Mapping[str, Any], **kwargs: Any) -> Any:
        return await self.request("POST", path, body, **kwargs)

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params={k: v for k, v in params.items() if v})

    # -- customers and KYC ---------------------------------------------------

    async def create_customer(self, external_id: str, **fields: str) -> dict[str, Any]:
        """fields: fullName, nik, email, phone. Answers {customer, nikCheck?}."""
        return dict(await self.post("/api/customers", {"externalId": external_id, **fields}))

    async def get_customer(self, customer_id: str) -> dict[str, Any]:
        return dict(await self.get(f"/api/identity/customers/{customer_id}"))

    async def kyc_status(self, customer_id: str) -> dict[str, Any]:
        return dict(await self.get(f"/api/identity/kyc/{customer_id}"))

    async def upgrade(self, customer_id: str, target_tier: str, **fields: str) -> dict[str, Any]:
        path = f"/api/identity/kyc/{customer_id}/upgrade"
        return dict(await self.post(path, {"targetTier": target_tier, **fields}))

    async def register_device(
        self, customer_id: str, device_id: str, public_key_pem: str, algorithm: str, platform: str
    ) -> dict[str, Any]:
        body = {
            "customerId": customer_id,
            "deviceId": device_id,
            "algorithm": algorithm,
            "publicKeyPem": public_key_pem,
            "platform": platform,
        }
        return dict(await self.post("/api/identity/devices/register", body))

    async def list_devices(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's devices, newest first; a revoked one has `revokedAt`."""
        answer = await self.get(f"/api/identity/customers/{customer_id}/devices")
        return list(answer.get("devices", []))

    async def revoke_device(self, customer_id: str, device_id: str) -> dict[str, Any]:
        """Revoke a lost or stolen device's key: the captures it signs are refused
        from then on (403 DEVICE_REVOKED). Idempotent; answers the device."""
        path = f"/api/identity/customers/{customer_id}/devices/{device_id}/revoke"
        return dict((await self.post(path, {}))["device"])

    # -- challenges and captures ----------------------------------------------

    async def ktp_challenge(self, customer_id: str) -> dict[str, Any]:
        answer = await self.post(
            "/api/identity/document/ktp/challenge", {"customerId": customer_id}
        )
        return dict(answer["challenge"])

    async def flash_challenge(self, customer_id: str, purpose: str) -> dict[str, Any]:
        body = {"customerId": customer_id, "purpose": purpose}
        return dict((await self.post("/api/identity/face/flash-challenge", body))["challenge"])

    async def _capture(
        self,
        path: str,
        customer_id: str,
        challenge_id: str,
        bundle: Mapping[str, Any],
        **extra: Any,
    ) -> dict[str, Any]:
        body = {"customerId": customer_id, "challengeId": challenge_id, "bundle": bundle, **extra}
        return dict(await self.post(path, body))

    async def submit_ktp(
        self,
        customer_id: str,
        challenge_id: str,
        bundle: Mapping[str, Any],
        ocr_fields: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """ocr_fields: what the customer typed (nik, fullName, birthDate, ...), cross-checked."""
        path = "/api/identity/document/ktp/capture"
        extra = {"ocrFields": dict(ocr_fields)} if ocr_fields else {}
        return await self._capture(path, customer_id, challenge_id, bundle, **extra)

    async def check_liveness(
        self, customer_id: str, challenge_id: str, bundle: Mapping[str, Any]
    ) -> dict[str, Any]:
        return await self._capture("/api/identity/face/liveness", customer_id, challenge_id, bundle)

    async def match_face(self, customer_id: str, liveness_verification_id: str) -> dict[str, Any]:
        body = {"customerId": customer_id, "livenessVerificationId": liveness_verification_id}
        return dict(await self.post("/api/identity/face/match", body))

    async def step_up(
        self, customer_id: str, challenge_id: str, bundle: Mapping[str, Any], action: str = ""
    ) -> dict[str, Any]:
        extra = {"action": action} if action else {}
        path = "/api/identity/auth/step-up"
        return await self._capture(path, customer_id, challenge_id, bundle, **extra)

    # -- webhooks --------------------------------------------------------------

    async def create_webhook(self, url: str, events: list[str] | None = None) -> dict[str, Any]:
        """Answers {webhook, signingSecret}: the secret is shown once."""
        body: dict[str, Any] = {"url": url}
        if events:
            body["events"] = events
        return dict(await self.post("/api/identity/webhooks", body))

    async def list_webhooks(self) -> list[dict[str, Any]]:
        return list((await self.get("/api/identity/webhooks")).get("webhooks", []))

    async def test_webhook(self, webhook_id: str) -> dict[str, Any]:
        return dict(await self.post(f"/api/identity/webhooks/{webhook_id}/test", {}))
