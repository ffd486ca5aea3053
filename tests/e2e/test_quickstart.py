"""docs/quickstart.md runs as written: every ```python block, in order, in one
namespace, against `identity up` (started as the README says, on its own
SQLite, with the key it prints), from the repository root. The blocks use
the partner client; the test then checks what they left behind: a premium
customer, an allowed step-up, and verified webhook deliveries for the tier
changes and the step-up, each event once."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_cli_up import IDENTITY, up_environment, wait_for_line

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.models]

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "docs" / "quickstart.md"


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def test_the_quickstart_has_the_whole_flow_in_python_blocks() -> None:
    code = "\n".join(python_blocks(QUICKSTART.read_text()))
    for call in ("create_webhook", "create_customer", "submit_ktp", "match_face", "step_up"):
        assert f"client.{call}(" in code
    assert "verify_webhook(" in code


def test_the_quickstart_runs_against_identity_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, ports = up_environment(tmp_path)
    # Each hop's default deadline: generous on a loaded 2-core machine.
    for prefix in ("KYC_TIER", "CAPTURE_QUALITY", "LIVENESS", "EMBEDDING", "MATCHING", "GATEWAY"):
        env[f"{prefix}_DEFAULT_DEADLINE_SECONDS"] = "60"
    process = subprocess.Popen(
        [IDENTITY, "up"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        printed = "\n".join(wait_for_line(process, "press Ctrl-C", timeout=300))
        key = re.search(r"API key +(idk_\S+)", printed)
        assert key, printed
        monkeypatch.setenv("IDENTITY_URL", f"http://127.0.0.1:{ports['GATEWAY']}")
        monkeypatch.setenv("IDENTITY_API_KEY", key.group(1))
        monkeypatch.chdir(ROOT)
        namespace: dict[str, object] = {"__name__": "quickstart"}
        for block in python_blocks(QUICKSTART.read_text()):
            exec(compile(block, str(QUICKSTART), "exec"), namespace)  # noqa: S102
        decision = namespace["decision"]
        assert isinstance(decision, dict) and decision["allow"] is True, decision
        events = namespace["events"]
        assert isinstance(events, list)
        # Deliveries run concurrently and promise no order (docs/webhooks.md):
        # the events in the order they happened.
        changes = sorted(
            (e for e in events if e["type"] == "kyc.tier_changed"), key=lambda e: e["created_at"]
        )
        tiers = [e["data"]["to_tier"] for e in changes]
        assert tiers[-1] == "premium" and set(tiers) <= {"basic", "standard", "premium"}
        assert [e["data"]["verification_id"] for e in events if e["type"] == "stepup.decided"] == [
            decision["verificationId"]
        ]
        assert len({e["id"] for e in events}) == len(events)
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        receiver = namespace.get("receiver") if "namespace" in locals() else None
        if receiver is not None:
            receiver.shutdown()  # type: ignore[attr-defined]
