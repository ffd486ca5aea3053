"""Model handling: the int8 fold against OpenCV on the original files, YuNet decoding,
alignment, sha256 verification at start-up, and sized ONNX Runtime sessions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from identity_inference.align import align_face
from identity_inference.detector import FaceDetector
from identity_inference.embedder import FaceEmbedder
from identity_inference.manifest import ModelIntegrityError, load_catalogue, resolve_path
from identity_inference.runners import OnnxRunner, session_options
from tests.support import REPO_ROOT
from tests.support.biometrics import FACES, PAD_DIR, SPOOF, photo
from tests.support.meshauth import service_env

pytestmark = [pytest.mark.models]

PHOTOS = ["img1.jpg", "img20.jpg", "couple.jpg", "img54.jpg"]


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


@pytest.fixture(scope="module")
def detector(catalogue):
    runner = OnnxRunner(catalogue["yunet-2023mar"], intra_op_threads=1)
    runner.load()
    return FaceDetector(runner)


@pytest.fixture(scope="module")
def embedder(catalogue):
    runner = OnnxRunner(catalogue["sface-2021dec"], intra_op_threads=1)
    runner.load()
    return FaceEmbedder(runner)


def test_folded_yunet_decodes_like_opencv_on_the_original_file(catalogue, detector) -> None:
    original = str(resolve_path(catalogue["yunet-2023mar"]))
    reference = cv2.FaceDetectorYN.create(
        original, "", (640, 640), detector.score_threshold, detector.nms_threshold, detector.top_k
    )
    for name in PHOTOS:
        canvas, _ = detector.letterbox(photo(FACES / name))
        _, expected = reference.detect(canvas)
        ours = detector.decode(detector.runner.infer(detector.to_blob(canvas)), 1.0, 10_000, 10_000)
        assert len(ours) == len(expected), name
        expected = sorted(expected.tolist(), key=lambda row: -row[2] * row[3])
        for face, row in zip(ours, expected, strict=True):
            assert np.abs(np.array(face.box) - row[:4]).max() < 0.01, name
            assert np.abs(face.landmarks - np.array(row[4:14]).reshape(5, 2)).max() < 0.01, name
            assert abs(face.score - row[14]) < 1e-4


def test_folded_sface_embeds_like_opencv_on_the_original_file(
    catalogue, detector, embedder
) -> None:
    recogniser = cv2.FaceRecognizerSF.create(str(resolve_path(catalogue["sface-2021dec"])), "")
    for name in PHOTOS[:2] + ["img2.jpg"]:
        canvas, _ = detector.letterbox(photo(FACES / name))
        face = detector.decode(detector.runner.infer(detector.to_blob(canvas)), 1.0, 640, 640)[0]
        row = np.array([*face.box, *face.landmarks.reshape(-1), face.score], dtype=np.float32)
        opencv_crop = recogniser.alignCrop(canvas, row)
        ours_crop = align_face(canvas, face.landmarks)
        # Same template, same similarity estimate: the crops differ by rounding only.
        assert np.abs(opencv_crop.astype(int) - ours_crop.astype(int)).mean() < 1.0
        expected = recogniser.feature(opencv_crop).reshape(-1)
        raw = embedder.runner.infer(embedder.to_batch([opencv_crop]))["fc1"].reshape(-1)
        assert np.abs(raw - expected).max() < 1e-4
        ours = embedder.embed([ours_crop])[0]
        assert float(ours @ (expected / np.linalg.norm(expected))) > 0.999


def test_dynamic_batch_gives_the_same_vectors(embedder, detector) -> None:
    crops = []
    for name in PHOTOS[:3]:
        image = photo(FACES / name)
        crops.append(align_face(image, detector.detect(image)[0].landmarks))
    batch = embedder.embed(crops)
    single = np.concatenate([embedder.embed([c]) for c in crops])
    assert np.abs(batch - single).max() < 1e-5


def test_onnx_runtime_sessions_are_sized_and_do_not_spin() -> None:
    options = session_options(1)
    assert options.intra_op_num_threads == 1
    assert options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert session_options(0).intra_op_num_threads == max(1, (os.cpu_count() or 2) // 2)


def test_the_packaged_pad_models_load_verified(catalogue) -> None:
    for model_id in ("minifasnet-v2", "minifasnet-v1se"):
        # No PAD directory: the weights packaged with identity_inference.
        assert resolve_path(catalogue[model_id]).parent == PAD_DIR
        runner = OnnxRunner(catalogue[model_id], intra_op_threads=1)
        runner.load()
        crop = (
            cv2.resize(photo(SPOOF / "image_T1.jpg"), (80, 80))
            .transpose(2, 0, 1)[None]
            .astype(np.float32)
        )
        assert runner.infer(np.concatenate([crop, crop]))["output"].shape == (2, 3)


def test_a_missing_pad_file_names_the_file_and_the_expected_hash(catalogue, tmp_path: Path) -> None:
    manifest = catalogue["minifasnet-v2"]
    with pytest.raises(ModelIntegrityError) as caught:
        OnnxRunner(manifest, pad_dir=tmp_path).load()
    message = str(caught.value)
    assert (
        str(tmp_path / "MiniFASNetV2.onnx") in message
        and manifest.sha256 in message
        and "missing" in message
    )


def _run_service(module: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module],
        env={**os.environ, **service_env(module.rpartition(".")[2].upper()), **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )


def test_an_altered_pad_model_stops_liveness_at_start_up(catalogue, tmp_path: Path) -> None:
    altered = tmp_path / "pad"
    shutil.copytree(PAD_DIR, altered)
    target = altered / "MiniFASNetV1SE.onnx"
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    result = _run_service(
        "services.liveness",
        {
            "LIVENESS_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "LIVENESS_PAD_MODEL_DIR": str(altered),
            "LIVENESS_PORT": "0",
            "LIVENESS_LOG_FORMAT": "console",
        },
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert str(target) in result.stderr
    assert catalogue["minifasnet-v1se"].sha256 in result.stderr
    assert "altered" in result.stderr
