"""Triton done right (issue 16), on the Triton server bundled in nvidia-pytriton
(CPU, python backend): the repository records the hashes of what it serves;
the init container's check refuses a tampered or swapped model file; the
embedding runner waits for a Triton that is still starting instead of
failing, refuses a repository built from other weights, and balances
round_robin over a re-resolved channel."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from identity_inference import triton_verify
from identity_inference.manifest import ModelIntegrityError, load_catalogue
from identity_inference.triton import CHANNEL_ARGS, TritonRunner
from identity_inference.triton_repo import LocalTritonServer, materialise, triton_available
from tests.support import unavailable
from tests.support.tls_stores import free_port

MODEL = "sface-2021dec"
MODEL_FILE = f"{MODEL}/1/model.onnx"


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("triton-repo")
    materialise(path, models=(MODEL,), backend="python")
    return path


def test_the_repository_records_both_hashes_and_verifies(repository: Path) -> None:
    config = (repository / MODEL / "config.pbtxt").read_text()
    manifest = load_catalogue(None)[MODEL]
    assert triton_verify.recorded(config, "weights_sha256") == manifest.sha256
    actual = triton_verify.sha256_of(repository / MODEL_FILE)
    assert triton_verify.recorded(config, "model_sha256") == actual
    assert triton_verify.main([str(repository), "--expect", f"{MODEL_FILE}={actual}"]) == 0


def test_a_tampered_or_unpinned_model_file_is_refused(
    repository: Path, tmp_path: Path, capsys
) -> None:
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(repository, copy)
    actual = triton_verify.sha256_of(copy / MODEL_FILE)
    # Pinned to another digest by the values: refused.
    assert triton_verify.main([str(copy), "--expect", f"{MODEL_FILE}={'0' * 64}"]) == 1
    assert "differs from the pinned" in capsys.readouterr().err
    # One byte changed after materialisation: refused against the config's own hash.
    data = bytearray((copy / MODEL_FILE).read_bytes())
    data[-1] ^= 1
    (copy / MODEL_FILE).write_bytes(bytes(data))
    assert triton_verify.main([str(copy)]) == 1
    assert f"differs from its config's {actual}" in capsys.readouterr().err
    # A pin for a model that is not there; an empty repository.
    assert triton_verify.main([str(repository), "--expect", f"other/1/model.onnx={actual}"]) == 1
    assert triton_verify.main([str(tmp_path / "empty")]) == 1


@pytest.mark.triton
@pytest.mark.slow
def test_the_runner_waits_for_a_starting_triton_then_serves(repository: Path) -> None:
    problem = triton_available()
    if problem:
        unavailable("the Triton server", problem)
    server = LocalTritonServer(repository, grpc_port=free_port())
    runner = TritonRunner(load_catalogue(None)[MODEL], server.url, wait_seconds=120)
    # Triton comes up only after the runner started waiting for it.
    starter = threading.Timer(2.0, server.start)
    started = time.monotonic()
    starter.start()
    try:
        runner.load()
        assert time.monotonic() - started > 1.0  # it did wait (no bound on how long)
        out = runner.infer(np.zeros((2, 3, 112, 112), dtype=np.float32))
        assert all(v.shape[0] == 2 for v in out.values())
        # The channel balances over every address the name resolves to.
        assert ("grpc.lb_policy_name", "round_robin") in CHANNEL_ARGS
        runner.refresh_seconds = 0
        again = runner.infer(np.zeros((1, 3, 112, 112), dtype=np.float32))
        assert all(v.shape[0] == 1 for v in again.values())
    finally:
        starter.join()
        runner.unload()
        server.stop()


@pytest.mark.triton
@pytest.mark.slow
def test_the_runner_refuses_other_weights_and_gives_up_on_no_triton(
    repository: Path, tmp_path: Path
) -> None:
    problem = triton_available()
    if problem:
        unavailable("the Triton server", problem)
    import shutil

    other = tmp_path / "other-weights"
    shutil.copytree(repository, other)
    config = other / MODEL / "config.pbtxt"
    recorded = triton_verify.recorded(config.read_text(), "weights_sha256")
    assert recorded
    config.write_text(config.read_text().replace(recorded, "f" * 64))
    server = LocalTritonServer(other).start()
    try:
        runner = TritonRunner(load_catalogue(None)[MODEL], server.url, wait_seconds=0)
        with pytest.raises(ModelIntegrityError, match="built from weights f{64}"):
            runner.load()
    finally:
        server.stop()
    nobody = TritonRunner(load_catalogue(None)[MODEL], f"127.0.0.1:{free_port()}", wait_seconds=0)
    with pytest.raises(ModelIntegrityError, match="Triton at 127.0.0.1"):
        nobody.load()
