"""Each service's composition root takes fakes for its ports:
`build(settings, *, overrides=<X>Overrides(...))`. Each test passes a fake,
shows the core used it, and loads no model weights."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import cv2
import numpy as np
import pytest

from identity_capture.sdk import SdkSigner
from identity_crypto.keyring import generate
from identity_inference import pack
from identity_inference.detector import Face
from identity_inference.pad import PadScorer
from identity_runtime.errors import FailedPrecondition
from identity_runtime.settings import load_settings
from identity_store.db import Database
from services.audit.bootstrap import AuditOverrides
from services.audit.bootstrap import build as build_audit
from services.audit.chain import Draft
from services.audit.settings import AuditSettings
from services.capture_quality.bootstrap import CaptureQualityOverrides
from services.capture_quality.bootstrap import build as build_capture_quality
from services.capture_quality.settings import CaptureQualitySettings
from services.embedding.bootstrap import EmbeddingOverrides
from services.embedding.bootstrap import build as build_embedding
from services.embedding.faces import AlignedInput
from services.embedding.settings import EmbeddingSettings
from services.liveness.bootstrap import LivenessOverrides
from services.liveness.bootstrap import build as build_liveness
from services.liveness.checks import LivenessRequest
from services.liveness.settings import LivenessSettings
from services.matching.bootstrap import MatchingOverrides
from services.matching.bootstrap import build as build_matching
from services.matching.contract import EmbeddingContract
from services.matching.engine import EmbeddingInput
from services.matching.settings import MatchingSettings
from tests.support.liveness import Clock, frames_for


class FakeRunner:
    """A model runner answering fixed outputs for a real manifest (no weights)."""

    def __init__(self, manifest: Any, output: np.ndarray):
        self.manifest = manifest
        self.output = output
        self.batches: list[np.ndarray] = []
        self.unloaded = False

    def load(self) -> None:
        return None

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        self.batches.append(batch)
        return {self.manifest.outputs[0].name: np.repeat(self.output, len(batch), axis=0)}

    def unload(self) -> None:
        self.unloaded = True


class FakeKms:
    """An in-memory key-encryption service that counts its calls."""

    def __init__(self) -> None:
        self.wrapped: dict[bytes, bytes] = {}
        self.unwraps = 0

    def primary_kek_id(self) -> str:
        return "fake-kek"

    def kek_ids(self) -> tuple[str, ...]:
        return ("fake-kek",)

    def wrap(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        token = f"wrapped-{len(self.wrapped)}".encode()
        self.wrapped[token] = data_key
        return "fake-kek", token

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        self.unwraps += 1
        return self.wrapped[wrapped]


async def test_liveness_takes_a_fake_pad_and_a_fake_clock(sqlite_url: str) -> None:
    settings = load_settings(LivenessSettings, "LIVENESS", {"LIVENESS_DATABASE_URL": sqlite_url})
    (manifest,) = pack.pad_manifests(settings, ("minifasnet-v2",))
    # Logits that put the live class (1) far below the attack class.
    runner = FakeRunner(manifest, np.array([[4.0, -4.0, 0.0]], dtype=np.float32))
    clock = Clock()
    core = await build_liveness(
        settings, overrides=LivenessOverrides(pad=PadScorer([runner]), clock=clock)
    )
    try:
        assert (await core.ready())[1].startswith("pad+challenge: minifasnet-v2")
        liveness = core.liveness
        signer = SdkSigner()
        await liveness.register_device(
            "org_1", signer.device_id, "cus_1", signer.algorithm, signer.public_key_der(), "ios"
        )

        async def capture() -> LivenessRequest:
            challenge = await liveness.issue_challenge("org_1", "cus_1", "step_up")
            signed = signer.sign_bundle(
                challenge_id=challenge.challenge_id, frames=[b"f"], captured_at=clock.now
            )
            return LivenessRequest(
                customer_id="cus_1",
                purpose="step_up",
                challenge_id=challenge.challenge_id,
                device_id=signed.device_id,
                nonce=signed.nonce,
                bundle_sha256=signed.bundle_sha256,
                signature=signed.signature,
                captured_at=signed.captured_at,
                computed_bundle_sha256=signed.bundle_sha256,
                pad_crops={
                    spec.scale: np.zeros((80, 80, 3), np.uint8) for spec in liveness.pad.specs
                },
                frames=frames_for(challenge.sequence, challenge.flash_duration_ms),
            )

        decision = await liveness.check_liveness("org_1", await capture())
        assert not decision.live and len(runner.batches) == 1
        assert decision.decision_basis == "pad+challenge"
        assert decision.pad is not None and decision.pad.fused_live_score < 0.01
        assert [code for code, _ in decision.reasons] == ["PAD_ATTACK_SUSPECTED"]
        # The fake clock decides expiry: no sleeping.
        late = await capture()
        clock.now += timedelta(seconds=settings.challenge_ttl_seconds + 1)
        with pytest.raises(FailedPrecondition) as caught:
            await liveness.check_liveness("org_1", late)
        assert caught.value.reason == "CHALLENGE_EXPIRED"
    finally:
        await core.close()
    assert runner.unloaded


async def test_matching_takes_a_fake_kms_and_a_database(sqlite_url: str) -> None:
    settings = load_settings(
        MatchingSettings,
        "MATCHING",
        {
            # Nothing is read from these: the overrides replace them.
            "MATCHING_DATABASE_URL": "sqlite:////nonexistent/never-opened.db",
            "MATCHING_KEK_KEYRING": generate("never-used").to_json(),
            "MATCHING_KEY_CACHE_SIZE": "0",
            "MATCHING_SYNC_INTERVAL_SECONDS": "3600",
        },
    )
    kms = FakeKms()
    core = await build_matching(
        settings, overrides=MatchingOverrides(database=Database(sqlite_url), kms=kms)
    )
    try:
        engine = core.engine
        vector = np.random.default_rng(1).standard_normal(128).astype(np.float32)
        vector /= np.linalg.norm(vector)
        embedding = EmbeddingInput(EmbeddingContract("sface-2021dec", "", 128), vector.tolist())
        await engine.enroll("org_1", "cus_1", embedding, "dukcapil", "", False)
        assert len(kms.wrapped) == 1
        result = await engine.verify("org_1", embedding, "cus_1", None, threshold=0.9)
        assert result.match and result.threshold == pytest.approx(0.9) and kms.unwraps == 1
    finally:
        await core.close()


async def test_audit_takes_a_fake_clock_and_its_keyring(sqlite_url: str) -> None:
    settings = load_settings(
        AuditSettings,
        "AUDIT",
        {"AUDIT_DATABASE_URL": sqlite_url, "AUDIT_HMAC_KEYRING": generate("file-key").to_json()},
    )
    fixed = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    keyring = generate("override-key")
    core = await build_audit(
        settings, overrides=AuditOverrides(keyring=keyring, clock=lambda: fixed)
    )
    try:
        entry = await core.trail.append(
            Draft(
                "org_1", "service:kyc-tier", "customer.create", "customer:cus_1", "success", "req-1"
            ),
            "kyc-tier",
        )
        assert (entry.recorded_at, entry.key_id) == (fixed, "override-key")
        assert (await core.trail.verify(0)).intact
    finally:
        await core.close()


class FakeDetector:
    """A face detector that finds the faces it was given."""

    model_id = "fake-detector@1"

    def __init__(self, faces: list[Face]):
        self.faces = faces
        self.images: list[tuple[int, ...]] = []
        self.runner = FakeRunner(None, np.zeros((1, 1)))

    def detect(self, image: np.ndarray) -> list[Face]:
        self.images.append(image.shape)
        return self.faces


async def test_capture_quality_takes_a_fake_detector_and_ktp_checker() -> None:
    settings = load_settings(CaptureQualitySettings, "CAPTURE_QUALITY", {})
    detector = FakeDetector([])
    ktp = object()  # never called here: only its place in the core is shown
    core = await build_capture_quality(
        settings,
        overrides=CaptureQualityOverrides(detector=detector, ktp=ktp),  # type: ignore[arg-type]
    )
    try:
        ok, encoded = cv2.imencode(".jpg", np.full((240, 320, 3), 128, np.uint8))
        assert ok
        frame = encoded.tobytes()
        assessment = core.faces.assess([frame])
        assert detector.images == [(240, 320, 3)] and core.ktp is ktp
        assert (assessment.passed, assessment.detector_model) == (False, "fake-detector@1")
        assert assessment.reasons[0][0] == "FACE_NOT_FOUND"
    finally:
        await core.close()
    assert detector.runner.unloaded


async def test_embedding_takes_a_fake_runner() -> None:
    settings = load_settings(EmbeddingSettings, "EMBEDDING", {})
    manifest = pack.embedding_manifest(settings, settings.embedding_model)
    runner = FakeRunner(manifest, np.arange(1, 129, dtype=np.float32)[None])
    core = await build_embedding(settings, overrides=EmbeddingOverrides(runner=runner))
    try:
        vectors = core.embeddings.embed([AlignedInput(np.zeros((112, 112, 3), np.uint8), "")])
        assert [b.shape for b in runner.batches] == [(1, 3, 112, 112)]
        expected = np.arange(1, 129, dtype=np.float32)
        assert np.allclose(vectors[0], expected / np.linalg.norm(expected))
    finally:
        await core.close()
    assert runner.unloaded


@pytest.mark.parametrize("service", ["audit", "matching"])
async def test_a_database_behind_its_migrations_is_refused(service: str, tmp_path: Any) -> None:
    """Audit and matching refuse to start on tables `identity migrate` has not
    brought to head, naming the command; the database is closed."""
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    database = Database(url)
    if service == "audit":
        settings: Any = load_settings(
            AuditSettings,
            "AUDIT",
            {"AUDIT_DATABASE_URL": url, "AUDIT_HMAC_KEYRING": generate("k").to_json()},
        )
        building = build_audit(settings, overrides=AuditOverrides(database=database))
    else:
        settings = load_settings(
            MatchingSettings,
            "MATCHING",
            {"MATCHING_DATABASE_URL": url, "MATCHING_KEK_KEYRING": generate("k").to_json()},
        )
        building = build_matching(settings, overrides=MatchingOverrides(database=database))
    with pytest.raises(RuntimeError, match=f"^{service}: .*run `identity migrate` first"):
        await building
