"""The whole face pipeline (decode -> detect -> align -> PAD -> embed) as one
Triton call (issue 15), on the Triton server bundled in nvidia-pytriton (CPU,
Python backend, BLS to the stage models): the same decisions as in-process on
every test photo, refusals for frames without a face or undecodable frames,
and a clear failure when Triton is down or serves another pipeline."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from identity_inference import images, triton_verify
from identity_inference.manifest import ModelIntegrityError
from identity_inference.pad import pad_crop
from identity_inference.pipeline import LIMITS, FacePipeline
from identity_inference.triton_pipeline import PipelineResult, TritonPipeline
from identity_inference.triton_repo import (
    PIPELINE,
    LocalTritonServer,
    materialise,
    materialise_pipeline,
    triton_available,
)
from identity_runtime.errors import InvalidArgument, Unavailable
from tests.support import TESTDATA, unavailable
from tests.support.tls_stores import free_port

STAGES = ("yunet-2023mar", "minifasnet-v2", "minifasnet-v1se", "sface-2021dec")
PHOTOS = sorted((TESTDATA / "faces").glob("*.jpg")) + sorted((TESTDATA / "spoof").glob("*.jpg"))


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("triton-pipeline-repo")
    materialise(path, models=STAGES, backend="python")
    materialise_pipeline(path)
    return path


@pytest.fixture(scope="module")
def server(repository: Path) -> Iterator[LocalTritonServer]:
    problem = triton_available()
    if problem:
        unavailable("the Triton server", problem)
    running = LocalTritonServer(repository).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def pipeline(server: LocalTritonServer) -> Iterator[TritonPipeline]:
    client = TritonPipeline(server.url, wait_seconds=60)
    client.load()
    try:
        yield client
    finally:
        client.unload()


@pytest.fixture(scope="module")
def local() -> FacePipeline:
    return FacePipeline.load(threads=1)


def _jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return data.tobytes()


def test_the_pipeline_model_is_pinned_by_the_digest_of_its_directory(
    repository: Path, tmp_path: Path, capsys
) -> None:
    config = (repository / PIPELINE / "config.pbtxt").read_text()
    digest = triton_verify.tree_sha256(repository / PIPELINE / "1")
    assert triton_verify.recorded(config, "model_sha256") == digest
    assert triton_verify.main([str(repository), "--expect", f"{PIPELINE}/1={digest}"]) == 0
    # The project code it runs is part of the digest: one changed line is refused.
    copy = tmp_path / "repo"
    shutil.copytree(repository, copy)
    module = copy / PIPELINE / "1" / "src" / "identity_inference" / "pad.py"
    module.write_text(module.read_text() + "\n# changed\n")
    assert triton_verify.main([str(copy)]) == 1
    assert f"{PIPELINE}/1: sha256" in capsys.readouterr().err
    # Its manifests and model come from the project, not from elsewhere.
    assert (repository / PIPELINE / "1" / "manifests" / "sface-2021dec.json").is_file()
    assert 'key: "pad_models" value { string_value: "minifasnet-v2,minifasnet-v1se" }' in config


def test_the_tool_writes_the_pipeline_only_beside_its_stage_models(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support import REPO_ROOT

    tool = [sys.executable, str(REPO_ROOT / "tools" / "triton_repo.py"), "--backend", "python"]
    alone = subprocess.run(
        [*tool, "--out", str(tmp_path / "a"), "--models", "sface-2021dec", "--pipeline"],
        capture_output=True,
        text=True,
    )
    assert alone.returncode == 2
    assert "face_pipeline calls yunet-2023mar, minifasnet-v2, minifasnet-v1se" in alone.stderr
    whole = subprocess.run(
        [*tool, "--out", str(tmp_path / "b"), "--models", ",".join(STAGES), "--pipeline"],
        capture_output=True,
        text=True,
    )
    assert whole.returncode == 0, whole.stderr
    assert whole.stdout.splitlines()[-1] == str(tmp_path / "b" / PIPELINE / "1")
    assert triton_verify.main([str(tmp_path / "b")]) == 0


@pytest.mark.triton
@pytest.mark.slow
def test_same_decisions_as_in_process_on_every_test_photo(
    pipeline: TritonPipeline, local: FacePipeline
) -> None:
    assert len(PHOTOS) >= 60
    frames = [path.read_bytes() for path in PHOTOS]
    remote: list[PipelineResult] = []
    for start in range(0, len(frames), 16):
        remote.extend(pipeline.run(frames[start : start + 16]))
    assert local.pad is not None
    worst_box = worst_landmark = worst_fused = 0.0
    worst_cosine = 1.0
    with_face = 0
    for path, data, result in zip(PHOTOS, frames, remote, strict=True):
        image = images.decode(data, LIMITS)
        faces = local.detector.detect(image)
        assert len(result.faces) == len(faces), path.name
        for mine, theirs in zip(faces, result.faces, strict=True):
            worst_box = max(worst_box, float(np.abs(np.subtract(mine.box, theirs.box)).max()))
            worst_landmark = max(
                worst_landmark, float(np.abs(mine.landmarks - theirs.landmarks).max())
            )
            assert theirs.score == pytest.approx(mine.score, abs=1e-3), path.name
        if not faces:
            assert result.pad is None and result.embedding is None, path.name
            continue
        with_face += 1
        face = faces[0]
        verdict = local.pad.score(
            {s.scale: pad_crop(image, face.box, s.scale, s.size) for s in local.pad.specs}
        )
        assert result.pad is not None and result.embedding is not None
        assert result.pad.live == verdict.live, path.name
        assert [s.model_id for s in result.pad.scores] == [s.model_id for s in verdict.scores]
        worst_fused = max(worst_fused, abs(result.pad.fused_live_score - verdict.fused_live_score))
        embedding = local.embedder.embed([local.embedder.align(image, face.landmarks)])[0]
        assert np.linalg.norm(result.embedding) == pytest.approx(1.0, abs=1e-4)
        worst_cosine = min(worst_cosine, float(embedding @ result.embedding))
    print(
        f"\n{with_face}/{len(PHOTOS)} photos with a face; worst box {worst_box:.3f} px, "
        f"landmark {worst_landmark:.3f} px, fused PAD {worst_fused:.2e}, cosine {worst_cosine:.6f}"
    )
    assert with_face >= 60
    assert worst_box < 1.0 and worst_landmark < 1.0
    assert worst_fused < 1e-3
    assert worst_cosine > 0.999


@pytest.mark.triton
@pytest.mark.slow
def test_a_frame_without_a_face_and_an_undecodable_frame(pipeline: TritonPipeline) -> None:
    face = (TESTDATA / "faces" / "img1.jpg").read_bytes()
    blank = _jpeg(np.full((480, 640, 3), 128, dtype=np.uint8))
    with_face, without = pipeline.run([face, blank])
    assert with_face.faces and with_face.pad is not None and with_face.embedding is not None
    assert without.faces == () and without.pad is None and without.embedding is None
    with pytest.raises(InvalidArgument) as refused:
        pipeline.run([b"\xff\xd8 not a jpeg"])
    assert refused.value.reason == "IMAGE_UNDECODABLE"
    with pytest.raises(InvalidArgument) as tiny:
        pipeline.run([_jpeg(np.zeros((20, 20, 3), dtype=np.uint8))])
    assert tiny.value.reason == "IMAGE_TOO_SMALL"
    # The server is still serving afterwards.
    assert pipeline.run([face])[0].faces


@pytest.mark.triton
@pytest.mark.slow
def test_a_client_for_another_pipeline_is_refused(server: LocalTritonServer) -> None:
    other = TritonPipeline(server.url, pad_models=("minifasnet-v2",))
    with pytest.raises(ModelIntegrityError, match="pad_models is 'minifasnet-v2,minifasnet-v1se'"):
        other.load()


@pytest.mark.triton
@pytest.mark.slow
def test_no_triton_then_a_triton_that_stops(repository: Path) -> None:
    problem = triton_available()
    if problem:
        unavailable("the Triton server", problem)
    nobody = TritonPipeline(f"127.0.0.1:{free_port()}", wait_seconds=0)
    with pytest.raises(ModelIntegrityError, match="Triton at 127.0.0.1"):
        nobody.load()
    server = LocalTritonServer(repository).start()
    client = TritonPipeline(server.url, timeout_seconds=10)
    try:
        client.load()
        face = (TESTDATA / "faces" / "img1.jpg").read_bytes()
        assert client.run([face])[0].faces
        server.stop()
        with pytest.raises(Unavailable) as down:
            client.run([face])
        assert down.value.reason == "DEPENDENCY_UNAVAILABLE"
    finally:
        client.unload()
        server.stop()
