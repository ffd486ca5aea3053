"""No personal data in any log file or error body, end to end.

`identity up` runs the whole mesh on PostgreSQL as an operator runs it (each
service logging to its file in the data directory). A partner then drives
the flows through the REST gateway, failures included: a customer with name,
NIK, email and phone; the same customer again (duplicate); a bad NIK; NUL
bytes in the body, the path and the query; the KTP capture and liveness;
step-ups allowed, denied (another person), refused (a reused challenge), with
large faceless frames, and over the pixel budget; a second customer showing
the same KTP card (a duplicate face); analyst searches by name and NIK.
Afterwards every log file and every error body is scanned: none holds a
persona's NIK, name, email or phone, base64 image data or the API key; the
log files are readable by their owner only.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import os
import re
import signal
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from identity_capture.sdk import SdkSigner
from identity_cli.schema import migrate_all
from identity_runtime import mesh
from identity_store.scratch import reachable, scratch_schema
from tests.e2e.test_cli_up import IDENTITY, up_environment, wait_for_line
from tests.e2e.test_onboarding import (
    KTP_NIK,
    Partner,
    bundle,
    card_capture,
    selfie,
    selfie_capture,
)
from tests.support import POSTGRES_URL, TESTDATA, unavailable

pytestmark = [pytest.mark.slow, pytest.mark.models, pytest.mark.postgres]

PERSONA = {
    "externalId": "privacy-1",
    "fullName": "Siti Rahayu",
    "nik": KTP_NIK,
    "email": "siti.rahayu@example.co.id",
    "phone": "+6281234567890",
}
OTHER = {
    "externalId": "privacy-2",
    "fullName": "Budi Santoso",
    "nik": "3273020101900099",
    "email": "budi.santoso@example.com",
    "phone": "085712345678",
}
THIRD = {
    "externalId": "privacy-3",
    "fullName": "Dewi Lestari",
    "email": "dewi.lestari@example.org",
    "phone": "+62 813-9876-5432",
}


def forbidden_values() -> list[str]:
    values = []
    for persona in (PERSONA, OTHER, THIRD):
        values += [persona["fullName"], persona["fullName"].upper(), persona["email"]]
        values += [persona["fullName"].split()[1]]  # the family name alone
        values.append(persona.get("nik", KTP_NIK))
        digits = re.sub(r"\D", "", persona["phone"])
        national = digits[2:] if digits.startswith("62") else digits.lstrip("0")
        values += [digits, national, "0" + national, "62" + national]
    return sorted(set(values))


def _faceless_png(side: int) -> bytes:
    image = np.full((side, side, 3), 180, np.uint8)
    image[:, : side // 2] = (40, 90, 160)
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


class Recorder:
    """The partner's HTTP client: every error body is kept for the scan."""

    def __init__(self, base_url: str):
        self.client = httpx.AsyncClient(base_url=base_url, timeout=120)
        self.error_bodies: list[str] = []
        self.images: list[bytes] = []

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.request(method, url, **kwargs)
        if response.status_code >= 400:
            self.error_bodies.append(f"{method} {url.split('?')[0]} -> {response.text}")
        return response

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)


async def register(partner: Partner, customer_id: str) -> None:
    await partner.ok(
        "POST",
        "/api/identity/devices/register",
        {
            "customerId": customer_id,
            "deviceId": partner.signer.device_id,
            "algorithm": "KEY_ALGORITHM_ECDSA_P256_SHA256",
            "publicKeyPem": partner.signer.public_key_pem().decode(),
            "platform": "android",
        },
    )


async def ktp_capture(partner: Partner, customer_id: str, card: bytes) -> httpx.Response:
    challenge = await partner.challenge(customer_id, "ktp")
    return await partner.post(
        "/api/identity/document/ktp/capture",
        {
            "customerId": customer_id,
            "challengeId": challenge["challengeId"],
            "bundle": card_capture(partner.signer, challenge, card),
            "ocrFields": {"nik": KTP_NIK, "fullName": "SITI RAHAYU", "birthDate": "1995-07-01"},
        },
    )


async def step_up_with(partner: Partner, customer_id: str, frames: list[bytes]) -> httpx.Response:
    challenge = await partner.challenge(customer_id, "CHALLENGE_PURPOSE_STEP_UP")
    return await partner.post(
        "/api/identity/auth/step-up",
        {
            "customerId": customer_id,
            "challengeId": challenge["challengeId"],
            "bundle": bundle(partner.signer, challenge, frames),
            "action": "transfer",
        },
    )


async def drive_the_flows(partner: Partner, recorder: Recorder) -> None:
    created = await partner.ok("POST", "/api/customers", PERSONA)
    customer_id = created["customer"]["customerId"]
    await register(partner, customer_id)

    # Failures: duplicate, bad NIK, NUL bytes in body, path and query.
    duplicate = await partner.post("/api/customers", PERSONA)
    assert duplicate.status_code == 409, duplicate.text
    bad_nik = await partner.post("/api/customers", {**OTHER, "nik": "1234567890123456"})
    assert bad_nik.status_code == 400, bad_nik.text
    for body in (
        {**OTHER, "fullName": "Budi\x00Santoso"},
        {**OTHER, "externalId": "privacy\x00-2"},
        {**OTHER, "email": OTHER["email"] + "\x00"},
    ):
        refused = await partner.post("/api/customers", body)
        assert refused.status_code == 400, refused.text
    for path in (
        "/api/identity/customers/cus%00x",
        "/api/identity/audit-log?subject=customer%3A%00" + KTP_NIK,
        "/api/identity/search?q=Siti%00Rahayu",
    ):
        refused = await partner.get(path)
        assert refused.status_code == 400, (path, refused.text)

    # Onboarding: the KTP card, then a live selfie.
    card = (TESTDATA / "ktp" / "ktp_captured.jpg").read_bytes()
    recorder.images.append(card)
    ktp = await ktp_capture(partner, customer_id, card)
    assert ktp.status_code == 200, ktp.text
    await partner.liveness(customer_id, selfie("img2.jpg"))

    # Step-ups: allowed, denied (another person), refused (a reused challenge).
    allowed, _, _ = await partner.step_up(customer_id, selfie("img4.jpg"))
    assert allowed.status_code == 200 and allowed.json()["allow"] is True, allowed.text
    denied, body, challenge = await partner.step_up(customer_id, selfie("img3.jpg"))
    assert denied.status_code == 200 and denied.json()["allow"] is False, denied.text
    body["bundle"] = selfie_capture(partner.signer, challenge, selfie("img3.jpg"))
    refused = await partner.post("/api/identity/auth/step-up", body)
    assert refused.status_code == 400, refused.text

    # Large faceless frames: a decision (no face), never a field the client did not send.
    faceless = await step_up_with(partner, customer_id, [_faceless_png(4000)] * 3)
    assert faceless.status_code == 200, faceless.text
    assert "pad_crops" not in faceless.text and "padCrops" not in faceless.text
    decision = faceless.json()
    assert decision["allow"] is False
    assert "FACE_NOT_FOUND" in {r["code"] for r in decision["reasons"]}
    # Over the pixel budget: 16 frames of 6300 x 6300.
    over = await step_up_with(partner, customer_id, [_faceless_png(6300)] * 16)
    assert over.status_code == 413, over.text
    error = over.json()["error"]
    assert error["reason"] == "IMAGE_BUDGET_EXCEEDED"
    assert error["metadata"]["field"] == "bundle.frames"

    # A second customer showing the same card: a duplicate face (whatever the
    # answer, nothing personal may leak from it).
    second = await partner.ok("POST", "/api/customers", THIRD)
    second_id = second["customer"]["customerId"]
    phone = copy.copy(partner)  # the second customer's own device
    phone.signer = SdkSigner()
    await register(phone, second_id)
    await ktp_capture(phone, second_id, card)

    # Analyst searches (the query is personal data too, and must not be logged).
    for query in (PERSONA["fullName"], KTP_NIK, PERSONA["email"]):
        found = await partner.get(f"/api/identity/search?q={query}")
        assert found.status_code == 200, found.text


def image_fragments(images: list[bytes]) -> list[str]:
    """Pieces of the base64 forms of the images the partner sent."""
    fragments = []
    for image in images:
        text = base64.b64encode(image).decode()
        fragments += [text[200:260], text[len(text) // 2 : len(text) // 2 + 60]]
    return fragments


def scan(name: str, text: str, forbidden: list[str]) -> list[tuple[str, str]]:
    found = [(name, value) for value in forbidden if value in text]
    blob = re.search(r"[A-Za-z0-9+/]{100,}={0,2}", text)
    if blob:
        found.append((name, f"base64-like run: {blob.group(0)[:20]}..."))
    return found


async def run_partner(base_url: str, key: str) -> Recorder:
    recorder = Recorder(base_url)
    try:
        partner = Partner(SimpleNamespace(client=recorder), key)  # type: ignore[arg-type]
        await drive_the_flows(partner, recorder)
    finally:
        await recorder.client.aclose()
    return recorder


def test_no_personal_data_in_any_log_file_or_error_body(tmp_path: Path) -> None:
    problem = reachable(POSTGRES_URL)
    if problem:
        unavailable(f"PostgreSQL at {POSTGRES_URL}", problem)
    env, ports = up_environment(tmp_path)
    # The most talkative level: whatever any logger writes is scanned.
    for service in [*mesh.SERVICES, "GATEWAY"]:
        prefix = service if isinstance(service, str) else service.env_prefix
        env[f"{prefix}_LOG_LEVEL"] = "DEBUG"
    with scratch_schema(POSTGRES_URL, prefix="privacy", prepare=migrate_all) as url:
        process = subprocess.Popen(
            [IDENTITY, "up", "--database-url", url],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            printed = wait_for_line(process, "press Ctrl-C", timeout=300)
            key = next(line.split()[2] for line in printed if "API key" in line)
            recorder = asyncio.run(run_partner(f"http://127.0.0.1:{ports['GATEWAY']}", key))
        finally:
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=90)

    logs = Path(env["IDENTITY_DATA_DIR"]) / "logs"
    files = sorted(logs.glob("*.log"))
    assert {f.stem for f in files} >= {"kyc-tier", "capture-quality", "liveness", "gateway"}
    assert stat.S_IMODE(os.stat(logs).st_mode) == 0o700
    forbidden = [*forbidden_values(), key, *image_fragments(recorder.images)]
    found: list[tuple[str, str]] = []
    for path in files:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
        text = path.read_text(errors="replace")
        assert text.strip(), f"{path.name} is empty: the scan would prove nothing"
        found += scan(path.name, text, forbidden)
    found += scan("identity up stderr", stderr, forbidden)
    found += scan("identity up stdout", stdout.replace(key, ""), forbidden)
    assert len(recorder.error_bodies) >= 10
    for body in recorder.error_bodies:
        found += scan(body.split(" -> ")[0], body, forbidden)
    assert found == []
