"""Shadow mode of the PAD models: a candidate scores the same crops on live
traffic, its agreement with the live decision and its score shift reach the
metrics, and it never changes a decision."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from identity_cli.schema import migrate_all
from identity_inference.pad import PadResult
from identity_runtime.settings import SettingsError, load_settings
from services.capture_quality.service import SPEC as CAPTURE_QUALITY
from services.liveness.checks import Liveness, LivenessRequest, _Checked, shadow_compare
from services.liveness.service import SPEC as LIVENESS
from services.liveness.settings import LivenessSettings
from tests.service.test_liveness import Client, sequence
from tests.support import channel, start_service
from tests.support.biometrics import SPOOF, flash_frames, photo
from tests.support.liveness import frames_for

pytestmark = [pytest.mark.models]


async def _liveness(tmp_path_factory, name: str, extra: dict[str, str]):
    url = f"sqlite:///{tmp_path_factory.mktemp(name) / 'identity.db'}"
    migrate_all(url)
    return await start_service(LIVENESS, {"LIVENESS_DATABASE_URL": url, **extra})


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def servers(tmp_path_factory):
    quality = await start_service(CAPTURE_QUALITY)
    plain = await _liveness(tmp_path_factory, "plain", {})
    # A candidate that calls everything live (threshold 0): it agrees on the live
    # face and disagrees on every spoof, so both outcomes are observed.
    shadowed = await _liveness(
        tmp_path_factory,
        "shadowed",
        {"LIVENESS_PAD_SHADOW_MODELS": "minifasnet-v1se", "LIVENESS_PAD_SHADOW_THRESHOLD": "0.0"},
    )
    yield quality, plain, shadowed
    for server in (shadowed, plain, quality):
        await server.stop(0)


def counted(candidate: str, agreement: str) -> float:
    labels = {"stage": "pad", "candidate": candidate, "agreement": agreement}
    return REGISTRY.get_sample_value("identity_shadow_decisions_total", labels) or 0.0


def shifts(candidate: str) -> float:
    labels = {"stage": "pad", "candidate": candidate}
    return REGISTRY.get_sample_value("identity_shadow_score_shift_count", labels) or 0.0


async def decide(quality, liveness, name: str):
    async with channel(quality) as q, channel(liveness) as lv:
        client = Client(q, lv)
        signer = await client.device("cus_shadow")
        challenge = await client.challenge("cus_shadow")
        frames = flash_frames(photo(SPOOF / name), sequence(challenge))
        return await client.check(await client.capture(signer, challenge, frames, "cus_shadow"))


@pytest.mark.parametrize(
    ("name", "agreement"), [("image_T1.jpg", "agree"), ("image_F1.jpg", "disagree")]
)
async def test_the_shadow_reports_agreement_and_never_changes_the_decision(
    servers, name: str, agreement: str
) -> None:
    quality, plain, shadowed = servers
    (candidate,) = shadowed.core.liveness.shadow.model_ids
    assert candidate.startswith("minifasnet-v1se@")
    before = {a: counted(candidate, a) for a in ("agree", "disagree", "skipped", "error")}
    shift_before = shifts(candidate)

    reference = await decide(quality, plain, name)
    shadowed_reply = await decide(quality, shadowed, name)

    # The decision is the live models' alone (the flash colours differ between
    # the two runs, so the scores do too: the exact equality is the next test's).
    assert shadowed_reply.live == reference.live == (agreement == "agree")
    assert [r.code for r in shadowed_reply.reasons] == [r.code for r in reference.reasons]
    assert [m.model_id for m in shadowed_reply.pad_models] == ["minifasnet-v2", "minifasnet-v1se"]
    assert shadowed_reply.decision_basis == reference.decision_basis == "pad+challenge"
    # The candidate's verdict and its score shift are reported.
    after = {a: counted(candidate, a) for a in before}
    assert {a: after[a] - before[a] for a in before} == {
        "agree": 1.0 if agreement == "agree" else 0.0,
        "disagree": 1.0 if agreement == "disagree" else 0.0,
        "skipped": 0.0,
        "error": 0.0,
    }
    assert shifts(candidate) - shift_before == 1


@pytest.mark.parametrize("name", ["image_T1.jpg", "image_F1.jpg", "image_F2.jpg"])
async def test_a_decision_is_identical_with_and_without_the_shadow(servers, name: str) -> None:
    """The same request decided by the same live models, once with the candidate in
    shadow and once without: equal decisions, field by field."""
    _, _, shadowed = servers
    live = shadowed.core.liveness
    face = cv2.resize(photo(SPOOF / name), (80, 80), interpolation=cv2.INTER_AREA)
    sequence_ = ["#ff0000", "#00ff00", "#0000ff", "#ffffff"]
    request = LivenessRequest(
        customer_id="cus_shadow",
        purpose="face_liveness",
        challenge_id="chl_x",
        device_id="dev_x",
        nonce="n",
        bundle_sha256="",
        signature=b"",
        captured_at=None,
        computed_bundle_sha256="",
        pad_crops={spec.scale: face for spec in live.pad.specs},
        frames=frames_for(sequence_, 300),
    )
    checked = _Checked(sequence_, 300)
    without = Liveness(database=live.database, pad=live.pad).decide(checked, request)
    (candidate,) = live.shadow.model_ids
    before = sum(counted(candidate, a) for a in ("agree", "disagree"))
    with_shadow = Liveness(database=live.database, pad=live.pad, shadow=live.shadow).decide(
        checked, request
    )
    assert with_shadow == without
    assert sum(counted(candidate, a) for a in ("agree", "disagree")) - before == 1


def test_a_failing_candidate_is_reported_as_an_error_and_decides_nothing() -> None:
    class Broken:
        model_ids = ["broken@1"]
        specs = [type("Spec", (), {"scale": 2.7})()]

        def score(self, crops):
            raise RuntimeError("candidate crashed")

    live = PadResult(live=True, fused_live_score=0.9, threshold=0.5, scores=())
    crop = np.zeros((80, 80, 3), np.uint8)
    before = counted("broken@1", "error")
    outcome = shadow_compare(Broken(), live, {2.7: crop})  # type: ignore[arg-type]
    assert outcome.agreement == "error" and outcome.score_shift is None
    assert counted("broken@1", "error") - before == 1
    missing = shadow_compare(Broken(), live, {4.0: crop})  # type: ignore[arg-type]
    assert missing.agreement == "skipped"


def test_a_shadow_without_live_pad_is_refused() -> None:
    with pytest.raises(SettingsError, match="LIVENESS_PAD_SHADOW_MODELS"):
        load_settings(
            LivenessSettings,
            "LIVENESS",
            {
                "LIVENESS_DATABASE_URL": "sqlite://",
                "LIVENESS_PAD_ENABLED": "false",
                "LIVENESS_PAD_SHADOW_MODELS": "minifasnet-v1se",
            },
        )
