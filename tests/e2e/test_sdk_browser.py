"""The web SDK in headless Chromium (Debian's chromium through playwright-core), with a
camera that answers the flash: the page's media stream is a generated face tinted by
the colour the SDK shows at that moment. The bundles it posts are checked with the
server's code (tests/support/sdk_receiver.py): gateway JSON parsing, kyc-tier digest,
device signature, flash-challenge response. The mesh on real models comes later.

Screenshots of each state are kept in .build/test-artefacts/sdk-web/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO_ROOT, unavailable
from tests.support.sdk_receiver import Receiver, RunningReceiver

pytestmark = pytest.mark.slow

SDK = REPO_ROOT / "sdk" / "web"
ARTEFACTS = REPO_ROOT / ".build" / "test-artefacts" / "sdk-web"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
PAGE = "/test/browser/page.html"


def _missing(what: str) -> None:
    unavailable(what, "tools/dev test installs it")


@pytest.fixture(scope="module")
def built_sdk() -> Path:
    return require_built_sdk()


def require_built_sdk() -> Path:
    """sdk/web with its dist built; skips (or fails under CI) without node or chromium."""
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed")
    if not CHROMIUM.exists():
        _missing(f"chromium is not installed at {CHROMIUM}")
    if not (SDK / "node_modules" / "playwright-core").is_dir():
        _missing("sdk/web/node_modules is not installed")
    if not (SDK / "dist" / "identity-capture.iife.js").is_file():
        subprocess.run(["npm", "run", "build"], cwd=SDK, check=True, capture_output=True)
    return SDK


@pytest.fixture
def receiver(built_sdk: Path) -> Iterator[RunningReceiver]:
    roots = {"/dist/": built_sdk / "dist", "/test/browser/": built_sdk / "test" / "browser"}
    with RunningReceiver(Receiver(static_roots=roots)) as running:
        yield running
    assert running.receiver.errors == []


def run_page(
    running: RunningReceiver,
    query: str,
    name: str,
    profile: Path | None = None,
    origin: str | None = None,
) -> dict:
    """One capture on the test page (served from `origin`, the receiver's by default)."""
    command = [
        "node",
        str(SDK / "test" / "browser" / "run.mjs"),
        "--url",
        f"{origin or running.origin}{PAGE}?{query}",
        "--shots",
        str(ARTEFACTS),
        "--name",
        name,
        "--chromium",
        str(CHROMIUM),
    ]
    if profile is not None:
        command += ["--user-data-dir", str(profile)]
    done = subprocess.run(command, cwd=SDK, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in result, result["error"]
    assert result["pageErrors"] == []
    # Figures, not assertions: from the capture screen to the decision on the page
    # (includes the driver's clicks).
    with (ARTEFACTS / "timings.jsonl").open("a") as log:
        figures = {"name": name, "elapsed_ms": round(result["elapsedMs"])}
        if result.get("decisionMs") is not None:
            figures["capture_start_to_decision_ms"] = round(result["decisionMs"])
        log.write(json.dumps(figures) + "\n")
    return result


def most_changes_in_one_second(changes: list[dict]) -> int:
    times = sorted(c["at"] for c in changes)
    return max((sum(1 for t in times if start <= t <= start + 1000) for start in times), default=0)


def jpeg_luma_quant_first(data: bytes) -> int:
    """The first luminance quantiser of a baseline JPEG (3 at quality 90, 6 at 80)."""
    start = data.index(b"\xff\xdb") + 4
    assert data[start] >> 4 == 0, "8-bit tables expected"
    return data[start + 1]


def test_a_selfie_and_a_ktp_card_from_one_registered_device(
    receiver: RunningReceiver, tmp_path: Path
) -> None:
    profile = tmp_path / "chromium-profile"
    face = run_page(receiver, "flow=face&customer=cus_browser_a", "face-answers", profile)

    state = receiver.receiver
    assert face["passed"] is True, face
    assert face["privateKeyExtractable"] is False
    assert [r["customerId"] for r in state.registrations] == ["cus_browser_a"]
    registration = state.registrations[0]
    assert registration["algorithm"] == "KEY_ALGORITHM_ECDSA_P256_SHA256"
    assert registration["platform"] == "web"
    assert registration["deviceId"] == face["deviceId"]

    (selfie,) = state.captures
    bundle = selfie.received.bundle
    assert selfie.received.digest_matches and selfie.received.computed_sha256 == face["digest"]
    assert selfie.signature_valid
    assert selfie.flash is not None and selfie.flash.passed and selfie.flash.score >= 0.75
    assert bundle.baseline == (True, False, False, False, False)
    assert bundle.offsets_ms[0] < 0
    flashed = [o // 400 for o in bundle.offsets_ms[1:]]
    assert flashed == [0, 1, 2, 3]
    for data, image in zip(bundle.frames, selfie.frames, strict=True):
        assert data[:2] == b"\xff\xd8" and image is not None
        assert min(image.shape[:2]) >= 480
        assert jpeg_luma_quant_first(data) <= 6  # JPEG quality 0.8 or better
    assert len(face["flashChanges"]) == 5
    assert most_changes_in_one_second(face["flashChanges"]) <= 3

    card = run_page(receiver, "flow=ktp&subject=card&customer=cus_browser_a", "ktp-card", profile)
    assert card["passed"] is True, card
    assert card["deviceId"] == face["deviceId"]
    assert len(state.registrations) == 1, "the key kept in IndexedDB is registered once"
    ktp = state.captures[1]
    assert ktp.route.endswith("/ktp/capture")
    assert ktp.received.digest_matches and ktp.signature_valid
    assert ktp.received.bundle.baseline == (True, False, False, False, False)
    assert min(ktp.frames[0].shape[:2]) >= 720
    # The card answers the flash, judged with the server's code.
    assert ktp.flash is not None and ktp.flash.passed and ktp.flash.score >= 0.75
    assert len(card["flashChanges"]) == 5
    assert most_changes_in_one_second(card["flashChanges"]) <= 3


def test_a_camera_that_ignores_the_flash_gets_the_flash_guidance_and_a_retry(
    receiver: RunningReceiver,
) -> None:
    result = run_page(
        receiver, "flow=face&camera=ignores&attempts=2&customer=cus_browser_b", "ignores"
    )
    assert result["passed"] is False
    assert result["codes"] == ["FLASH_RESPONSE_MISSING"]
    assert "Cahaya layar tidak terlihat" in result["guidance"][0]["message"]
    captures = receiver.receiver.captures
    assert len(captures) == 2, "one retry, with a new challenge"
    assert captures[0].received.request.challenge_id != captures[1].received.request.challenge_id
    for capture in captures:
        assert capture.signature_valid and capture.received.digest_matches
        assert capture.flash is not None
        assert [code for code, _ in capture.flash.reasons] == ["FLASH_RESPONSE_MISSING"]
    # Two flash sequences, and still at most three screen changes in any second.
    assert len(result["flashChanges"]) == 10
    assert most_changes_in_one_second(result["flashChanges"]) <= 3
    assert (ARTEFACTS / "ignores-retry-1.png").is_file()
    assert (ARTEFACTS / "ignores-guidance-FLASH_RESPONSE_MISSING.png").is_file()


def test_a_step_up_in_english(receiver: RunningReceiver) -> None:
    result = run_page(receiver, "flow=step_up&locale=en&customer=cus_browser_c", "step-up")
    assert result["passed"] is True, result
    (capture,) = receiver.receiver.captures
    assert capture.route == "/api/identity/auth/step-up"
    assert capture.received.request.action == "transfer"
    assert capture.signature_valid and capture.flash is not None and capture.flash.passed
