"""The partner client (clients/python): bundles the server accepts, the shared
test vectors, webhook verification, safe retries, and no server imports."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from identity_platform_client import (
    ApiError,
    DeviceKey,
    Frame,
    IdentityClient,
    RetryPolicy,
    WebhookVerificationError,
    build_bundle,
    bundle_digest,
    verify_webhook,
)
from tests.support.capture import KTP_ROUTE, STEP_UP_ROUTE, receive, signature_valid

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "contracts" / "test-vectors" / "capture-bundle.json").read_text())


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_the_digest_matches_the_shared_vectors(vector: dict) -> None:
    bundle, expected = vector["bundle"], vector["expected"]
    attestation = bundle["attestation"]
    digest = bundle_digest(
        vector["challenge_id"],
        attestation["nonce"],
        attestation["deviceId"],
        datetime.fromisoformat(attestation["capturedAt"].replace("Z", "+00:00")),
        [base64.b64decode(f["image"]["data"]) for f in bundle["frames"]],
        bytes.fromhex(expected["sensors_serialized_hex"]),
    )
    assert digest == expected["bundle_sha256"]
    assert (digest == attestation["bundleSha256"]) is vector["expect"]["digest_matches"]


def test_a_built_bundle_is_what_the_server_digests_and_verifies() -> None:
    key = DeviceKey()
    card = (ROOT / "tests" / "data" / "ktp" / "ktp_captured.jpg").read_bytes()
    moment = datetime(2026, 11, 26, 17, 4, 5, 987654, tzinfo=UTC)
    body = {
        "customerId": "cus_1",
        "challengeId": "chl_1",
        "bundle": build_bundle(key, "chl_1", [Frame(card)], captured_at=moment, nonce="n" * 16),
    }
    received = receive(KTP_ROUTE, body)
    assert received.digest_matches
    assert body["bundle"]["attestation"]["capturedAt"] == "2026-11-26T17:04:05Z"
    assert signature_valid("KEY_ALGORITHM_ECDSA_P256_SHA256", key.public_key_pem(), received)
    # Another challenge id: the same bundle no longer matches its digest.
    body["challengeId"] = "chl_2"
    assert not receive(STEP_UP_ROUTE, body).digest_matches


def test_line_breaks_are_refused_before_signing() -> None:
    with pytest.raises(ValueError):
        bundle_digest("chl", "nonce\nx", "dev", datetime.now(UTC), [b"x"])


def _signed(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_webhook_deliveries_are_verified_fresh_and_new() -> None:
    now = datetime.now(UTC)
    event = {"id": "evt_1", "type": "kyc.tier_changed", "created_at": now.isoformat(), "data": {}}
    body = json.dumps(event).encode()
    seen: set[str] = set()
    headers = {"X-Identity-Signature": _signed("new", body) + ", " + _signed("old", body)}
    assert verify_webhook("old", body, headers, seen=seen)["id"] == "evt_1"
    with pytest.raises(WebhookVerificationError, match="replayed"):
        verify_webhook("new", body, headers, seen=seen)
    # Either header; either secret during a rotation.
    quantum = {"X-Quantum-Signature": _signed("new", body)}
    assert verify_webhook(["old", "new"], body, quantum)["type"] == "kyc.tier_changed"
    with pytest.raises(WebhookVerificationError, match="signature"):
        verify_webhook("other", body, headers)
    with pytest.raises(WebhookVerificationError, match="signature"):
        verify_webhook("new", body + b" ", headers)
    with pytest.raises(WebhookVerificationError, match="stale"):
        verify_webhook("new", body, headers, now=now + timedelta(minutes=6))


async def test_retries_reuse_the_idempotency_key_and_resend_captures_verbatim() -> None:
    seen: list[httpx.Request] = []
    answers = iter([503, 503, 200, 429, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = next(answers)
        if status == 200:
            return httpx.Response(200, json={"ok": True})
        error = {"code": status, "status": "UNAVAILABLE", "reason": "CIRCUIT_OPEN"}
        return httpx.Response(status, json={"error": error}, headers={"Retry-After": "0"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://api")
    client = IdentityClient(api_key="idk_x", http=http, retry=RetryPolicy(initial_backoff=0.0))
    assert await client.create_customer("ext-1") == {"ok": True}
    keys = {r.headers["idempotency-key"] for r in seen}
    assert len(seen) == 3 and len(keys) == 1 and keys != {""}
    assert seen[0].headers["authorization"] == "Bearer idk_x"
    seen.clear()
    bundle = {"frames": [], "attestation": {"nonce": "n1"}}
    assert await client.step_up("cus_1", "chl_1", bundle) == {"ok": True}
    assert len(seen) == 2 and seen[0].content == seen[1].content
    assert "idempotency-key" not in seen[0].headers  # idempotent by the bundle's nonce
    await http.aclose()


async def test_errors_parse_with_reasons_the_client_does_not_know() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        error = {
            "code": 400,
            "status": "FAILED_PRECONDITION",
            "reason": "A_REASON_ADDED_NEXT_YEAR",
            "domain": "identity-platform",
            "message": "no",
            "metadata": {"field": "x"},
            "requestId": "r1",
        }
        return httpx.Response(400, json={"error": error})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://api")
    client = IdentityClient(api_key="k", http=http)
    with pytest.raises(ApiError) as caught:
        await client.get_customer("cus_1")
    assert caught.value.reason == "A_REASON_ADDED_NEXT_YEAR"
    assert (caught.value.http_status, caught.value.request_id) == (400, "r1")
    await http.aclose()


def test_the_client_imports_nothing_of_the_server() -> None:
    probe = (
        "import sys; sys.path.insert(0, 'clients/python')\n"
        "import identity_platform_client\n"
        "server = ('services', 'gateway', 'identity_platform_api', 'identity_runtime',\n"
        "          'identity_capture', 'identity_cli', 'tests')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(server)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
