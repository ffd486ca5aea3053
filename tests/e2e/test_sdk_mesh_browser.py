"""The web SDK in headless Chromium against `identity up` on real models (issue 18).

One `identity up` for the module (SQLite, its own data dir); the local
organisation's printed key plays the partner's backend: it lists the test
page's origin as an SDK origin, creates the customer and mints SDK session
tokens. The page (served from another origin, like a partner's site) holds
only the token. Its camera answers the flash: the test photos (a KTP card, the
card holder's selfies from faces/) drawn into a canvas stream and tinted by
the colour the SDK shows at that moment (sdk/web/test/browser/fake-camera.js).

Screenshots of every guidance state go to .build/test-artefacts/sdk-web/
(`mesh-*.png`), capture-start-to-decision times to its timings.jsonl.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest

from identity_runtime import mesh as mesh_services
from tests.e2e.test_cli_up import IDENTITY, up_environment, wait_for_line
from tests.e2e.test_onboarding import KTP_NIK, _yunet_path
from tests.e2e.test_sdk_browser import ARTEFACTS, require_built_sdk, run_page
from tests.support import TESTDATA
from tests.support.biometrics import FACES, photo
from tests.support.sdk_receiver import Receiver, RunningReceiver

pytestmark = [pytest.mark.slow, pytest.mark.models]

SDK_BROWSER = Path(__file__).resolve().parents[2] / "sdk" / "web" / "test" / "browser"

ORG = "org_sdk_bank"
OCR = {"nik": KTP_NIK, "fullName": "SITI RAHAYU", "birthDate": "1995-07-01", "gender": "female"}


@dataclass
class Mesh:
    gateway: str
    partner: httpx.Client
    page: RunningReceiver
    profile: Path
    photos: Path

    @property
    def allowed_origin(self) -> str:
        return self.page.origin

    @property
    def other_origin(self) -> str:
        # The same page server under another name: another origin to a browser.
        return self.page.origin.replace("127.0.0.1", "localhost")

    def ok(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.partner.request(method, path, json=body)
        assert response.status_code == 200, (path, response.status_code, response.text[:600])
        return response.json()

    def customer(self, external_id: str, nik: str = "") -> str:
        body = {"externalId": external_id, "fullName": "Siti Rahayu", "nik": nik}
        return str(self.ok("POST", "/api/customers", body)["customer"]["customerId"])

    def token(self, customer_id: str) -> str:
        minted = self.ok("POST", "/api/identity/sdk-sessions", {"customerId": customer_id})
        assert minted["token"].startswith("sdk_")
        return str(minted["token"])

    def capture(self, name: str, customer_id: str, token: str, **query: str) -> dict[str, Any]:
        """One capture on the page, as the partner's site would run it."""
        origin = query.pop("origin", self.allowed_origin)
        params = {
            "gateway": self.gateway,
            "token": token,
            "customer": customer_id,
            "size": "960x720",
            **query,
        }
        return run_page(
            self.page, urllib.parse.urlencode(params), f"mesh-{name}", self.profile, origin
        )


def webcam_selfie(name: str) -> Any:
    """A photo of faces/ framed as a 4:3 webcam sees a face close to the screen:
    the face box about a quarter of the frame (capture-quality wants a fifth),
    with room around it for the PAD crops (1.5 face boxes: FACE_TOO_CLOSE)."""
    image = photo(FACES / name)
    height, width = image.shape[:2]
    detector = cv2.FaceDetectorYN.create(_yunet_path(), "", (width, height), 0.6)
    _, faces = detector.detect(image)
    x, y, w, h = (float(v) for v in faces[0][:4])
    crop_h = min(height, int(h * 1.6))
    crop_w = min(width, crop_h * 4 // 3)
    x0 = int(min(max(0, x + w / 2 - crop_w / 2), width - crop_w))
    y0 = int(min(max(0, y + h / 2 - crop_h / 2), height - crop_h))
    return image[y0 : y0 + crop_h, x0 : x0 + crop_w]


def _photos(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ktp.jpg").write_bytes((TESTDATA / "ktp" / "ktp_captured.jpg").read_bytes())
    for name in ("img2.jpg", "img4.jpg"):
        framed = webcam_selfie(name)
        cv2.imwrite(str(directory / f"selfie-{name}"), framed, [cv2.IMWRITE_JPEG_QUALITY, 95])
    # The demo's camera shows one selfie (demo.mjs).
    (directory / "selfie.jpg").write_bytes((directory / "selfie-img2.jpg").read_bytes())
    return directory


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    built_sdk = require_built_sdk()
    tmp = tmp_path_factory.mktemp("sdk-mesh")
    env, ports = up_environment(tmp)
    # The first capture loads the models on a shared machine.
    for prefix in ["GATEWAY", *(s.env_prefix for s in mesh_services.SERVICES)]:
        env[f"{prefix}_DEFAULT_DEADLINE_SECONDS"] = "60"
    process = subprocess.Popen(
        [IDENTITY, "up"],
        env=env,
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed = "\n".join(wait_for_line(process, "press Ctrl-C", timeout=300))
        gateway = f"http://127.0.0.1:{ports['GATEWAY']}"
        assert f"{gateway}/sdk-demo" in printed
        # A partner of its own (the local organisation is the demo's).
        run: dict[str, Any] = {"env": env, "cwd": tmp, "capture_output": True, "text": True}
        subprocess.run([IDENTITY, "orgs", "create", "--name", "Bank SDK", "--id", ORG], **run)
        made = subprocess.run(
            [IDENTITY, "api-keys", "create", "--org", ORG, "--name", "backend"]
            + ["--scope", "public", "--scope", "internal"],
            **run,
        )
        key = re.search(r"idk_\S+", made.stdout)
        assert key, made.stdout
        roots = {
            "/dist/": built_sdk / "dist",
            "/test/browser/": built_sdk / "test" / "browser",
            "/photos/": _photos(tmp / "photos"),
        }
        headers = {"Authorization": f"Bearer {key.group(0)}"}
        with (
            RunningReceiver(Receiver(static_roots=roots)) as page,
            httpx.Client(base_url=gateway, headers=headers, timeout=120) as partner,
        ):
            yield Mesh(gateway, partner, page, tmp / "chromium-profile", roots["/photos/"])
            assert page.receiver.errors == []
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)


@pytest.fixture(scope="module")
def origins(mesh: Mesh) -> list[str]:
    """The partner lists its onboarding site as the only SDK origin."""
    answer = mesh.ok("PUT", "/api/identity/sdk-origins", {"origins": [mesh.allowed_origin]})
    return list(answer["origins"])


@pytest.fixture(scope="module")
def premium(mesh: Mesh, origins: list[str]) -> dict[str, Any]:
    """KTP card then selfie in the browser, the match by the partner: premium."""
    assert origins == [mesh.allowed_origin]
    customer_id = mesh.customer("sdk-persona", KTP_NIK)
    token = mesh.token(customer_id)
    steps: dict[str, Any] = {"customer_id": customer_id, "token": token}
    steps["card"] = mesh.capture(
        "ktp",
        customer_id,
        token,
        flow="ktp",
        photo="/photos/ktp.jpg",
        size="1280x900",
        ocr=json.dumps(OCR),
    )
    steps["selfie"] = mesh.capture(
        "selfie", customer_id, token, flow="face", photo="/photos/selfie-img2.jpg"
    )
    if steps["selfie"]["passed"]:
        steps["match"] = mesh.ok(
            "POST",
            "/api/identity/face/match",
            {
                "customerId": customer_id,
                "livenessVerificationId": steps["selfie"]["verificationId"],
            },
        )
    return steps


def test_a_customer_onboards_to_premium_in_the_browser(premium: dict[str, Any]) -> None:
    card, face = premium["card"], premium["selfie"]
    assert card["passed"] is True, card
    assert card["tier"] == "KYC_TIER_STANDARD"
    assert card["privateKeyExtractable"] is False
    assert face["passed"] is True, face
    assert face["deviceId"] == card["deviceId"], "one device key, registered once"
    assert len(face["flashChanges"]) == 5
    assert premium["match"]["tier"] == "KYC_TIER_PREMIUM", premium["match"]


def test_an_allowed_step_up_and_its_replay_answered_with_the_original(
    mesh: Mesh, premium: dict[str, Any]
) -> None:
    result = mesh.capture(
        "step-up",
        premium["customer_id"],
        premium["token"],
        flow="step_up",
        locale="en",
        photo="/photos/selfie-img4.jpg",
        replay="1",
    )
    assert result["passed"] is True, result
    # The same signed bundle posted again, byte for byte: the original decision
    # (seed 001), marked as a replay, never a second step-up.
    replay = result["replay"]
    assert replay["status"] == 200 and replay["replayed"] is True, replay
    assert replay["verificationId"] == result["verificationId"], (replay, result)


def test_a_camera_that_ignores_the_flash_is_refused_with_the_flash_reason(
    mesh: Mesh, premium: dict[str, Any]
) -> None:
    result = mesh.capture(
        "ignores",
        premium["customer_id"],
        premium["token"],
        flow="step_up",
        camera="ignores",
        photo="/photos/selfie-img4.jpg",
    )
    assert result["passed"] is False
    assert "FLASH_RESPONSE_MISSING" in result["codes"], result
    assert (ARTEFACTS / f"mesh-ignores-guidance-{'-'.join(result['codes'])}.png").is_file()


def test_another_customers_token_is_refused(mesh: Mesh, premium: dict[str, Any]) -> None:
    other = mesh.customer("sdk-other")
    result = mesh.capture(
        "other-token",
        premium["customer_id"],
        mesh.token(other),
        flow="face",
        photo="/photos/selfie-img2.jpg",
    )
    assert result["passed"] is False
    assert result["codes"] == ["SDK_SESSION_CUSTOMER_MISMATCH"]
    assert result["retry"] is False


def test_an_origin_not_on_the_list_is_refused_by_cors(mesh: Mesh, origins: list[str]) -> None:
    customer_id = mesh.customer("sdk-elsewhere")
    token = mesh.token(customer_id)
    result = mesh.capture(
        "other-origin", customer_id, token, flow="face", origin=mesh.other_origin, attempts="1"
    )
    # The browser refused the gateway's answer: the SDK saw no response at all.
    assert result["passed"] is False
    assert result["codes"] == ["NETWORK_ERROR"]
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    path = f"{mesh.gateway}/api/identity/devices/register"
    refused = httpx.options(path, headers={"Origin": mesh.other_origin, **preflight})
    assert "access-control-allow-origin" not in refused.headers
    allowed = httpx.options(path, headers={"Origin": mesh.allowed_origin, **preflight})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == mesh.allowed_origin
    # Nothing was registered for that customer from the refused page.
    status = mesh.ok("GET", f"/api/identity/kyc/{customer_id}")
    assert status["tier"] == "KYC_TIER_NONE"


def test_identity_up_serves_the_demo_page_and_its_token_helper(mesh: Mesh) -> None:
    with httpx.Client(base_url=mesh.gateway, timeout=60) as browser:  # no API key
        page = browser.get("/sdk-demo")
        assert page.status_code == 200 and "/sdk-demo/identity-capture.js" in page.text
        sdk = browser.get("/sdk-demo/identity-capture.js")
        assert sdk.status_code == 200 and "IdentityCapture" in sdk.text
        made = browser.post("/sdk-demo/session", json={"fullName": "Demo Developer"})
        assert made.status_code == 200, made.text
        answer = made.json()
        assert answer["token"].startswith("sdk_") and "idk_" not in made.text
        status = browser.get(
            f"/api/identity/kyc/{answer['customerId']}",
            headers={"Authorization": f"Bearer {answer['token']}"},
        )
        assert status.status_code == 200, status.text


def test_a_developer_onboards_on_the_demo_page(mesh: Mesh) -> None:
    """/sdk-demo in Chromium, the test camera showing the card, then the selfie:
    the page's own backend mints the token, the customer reaches premium and
    passes a step-up; the page's strict CSP holds (no error in the console)."""
    command = ["node", str(SDK_BROWSER / "demo.mjs"), "--url", f"{mesh.gateway}/sdk-demo"]
    command += ["--photos", str(mesh.photos), "--shots", str(ARTEFACTS)]
    command += ["--fullName", OCR["fullName"], "--nik", KTP_NIK, "--birthDate", OCR["birthDate"]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in result, result["error"]
    log = result["log"]
    assert result["errors"] == [], result
    assert "KTP card: passed" in log and "tier: KYC_TIER_STANDARD" in log, log
    assert "selfie (liveness): passed" in log, log
    assert "tier: KYC_TIER_PREMIUM" in log, log
    assert "step-up (transfer): passed" in log, log
