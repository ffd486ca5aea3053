"""Materialising the Triton model repository, and a local CPU Triton server.

`materialise()` copies `deploy/triton/model_repository` to an output
directory and writes each model's verified, prepared weights as
`<id>/1/model.onnx` (the same bytes the in-process runner loads). With
`backend="python"` the configs are rewritten for a CPU server without the
ONNX Runtime backend: Python backend + `onnx_python_model.py`, CPU instances.

`LocalTritonServer` starts the Triton binary bundled in `nvidia-pytriton`
from the `.venv-triton` virtualenv (tools/envs/triton.sh) on free ports. Two
things it needs (see the models README): numpy<2 in that venv, and
LD_LIBRARY_PATH pointing at the interpreter's own libpython directory so the
Python backend stub does not load the system's libpython.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format

from identity_inference.manifest import ModelIntegrityError, load_catalogue
from identity_inference.runners import prepared_model_bytes
from identity_inference.triton_verify import parameters_text, tree_sha256

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_REPOSITORY = REPO_ROOT / "deploy" / "triton" / "model_repository"
PYTHON_MODEL = REPO_ROOT / "deploy" / "triton" / "onnx_python_model.py"
# The whole-pipeline BLS model (deploy/triton/face_pipeline_model.py) and its config.
PIPELINE = "face_pipeline"
PIPELINE_MODEL = REPO_ROOT / "deploy" / "triton" / "face_pipeline_model.py"
PIPELINE_CONFIG = REPO_ROOT / "deploy" / "triton" / "face_pipeline" / "config.pbtxt"
# What the pipeline model imports of the project (stdlib, numpy and OpenCV
# besides): copied into <face_pipeline>/1/src so there is one implementation.
PIPELINE_SOURCES = {
    "identity_inference": (
        "__init__.py",
        "align.py",
        "detector.py",
        "embedder.py",
        "images.py",
        "manifest.py",
        "pad.py",
    ),
    "identity_runtime": ("__init__.py", "errors.py", "mesh.py", "settings.py"),
}
LIBS = Path(__file__).resolve().parents[1]
TRITON_VENV = REPO_ROOT / ".venv-triton"


def _python_backend_config(text: str, intra_op_threads: int) -> str:
    from tritonclient.grpc import model_config_pb2

    config = model_config_pb2.ModelConfig()
    text_format.Parse(text, config)
    config.backend = "python"
    config.ClearField("optimization")
    del config.instance_group[:]
    config.instance_group.add(kind=model_config_pb2.ModelInstanceGroup.KIND_CPU, count=1)
    config.parameters["intra_op_threads"].string_value = str(intra_op_threads)
    return text_format.MessageToString(config)


def materialise(
    out: Path,
    *,
    models: tuple[str, ...] | None = None,
    pad_dir: Path | None = None,
    model_dir: Path | None = None,
    backend: str = "onnxruntime",
    intra_op_threads: int = 1,
) -> list[str]:
    """Write the repository with verified weights; return the model ids written."""
    catalogue = load_catalogue(model_dir)
    written = []
    for source in sorted(p for p in SOURCE_REPOSITORY.iterdir() if (p / "config.pbtxt").is_file()):
        model_id = source.name
        if models is not None and model_id not in models:
            continue
        manifest = catalogue[model_id]
        target = out / model_id
        (target / "1").mkdir(parents=True, exist_ok=True)
        config = (source / "config.pbtxt").read_text()
        if backend == "python":
            config = _python_backend_config(config, intra_op_threads)
            shutil.copyfile(PYTHON_MODEL, target / "1" / "model.py")
        prepared = prepared_model_bytes(manifest, pad_dir)
        # Both hashes go into the config (identity_inference.triton_verify).
        hashes = parameters_text(manifest.sha256, hashlib.sha256(prepared).hexdigest())
        (target / "config.pbtxt").write_text(config.rstrip("\n") + "\n" + hashes)
        (target / "1" / "model.onnx").write_bytes(prepared)
        written.append(model_id)
    return written


def materialise_pipeline(
    out: Path,
    *,
    detector: str = "yunet-2023mar",
    pad_models: tuple[str, ...] = ("minifasnet-v2", "minifasnet-v1se"),
    embedding: str = "sface-2021dec",
    model_dir: Path | None = None,
) -> Path:
    """Write the `face_pipeline` BLS model beside the stage models (which
    `materialise` writes): its config, model.py, the stage manifests and the
    project modules it imports. Its `model_sha256` is the digest of `1/`."""
    catalogue = load_catalogue(model_dir)
    stages = (detector, *pad_models, embedding)
    missing = [model_id for model_id in stages if model_id not in catalogue]
    if missing:
        raise ModelIntegrityError([f"no manifest for {', '.join(missing)}"])
    absent = [model_id for model_id in stages if not (out / model_id / "config.pbtxt").is_file()]
    if absent:
        raise ModelIntegrityError(
            [f"{PIPELINE} calls {', '.join(absent)}, which {out} does not hold"]
        )
    target = out / PIPELINE
    version = target / "1"
    if version.exists():
        shutil.rmtree(version)
    (version / "manifests").mkdir(parents=True)
    shutil.copyfile(PIPELINE_MODEL, version / "model.py")
    for model_id in stages:
        manifest = catalogue[model_id]
        if manifest.manifest_path is None:
            raise ModelIntegrityError([f"model {model_id}: manifest has no file"])
        shutil.copyfile(manifest.manifest_path, version / "manifests" / f"{model_id}.json")
    for package, modules in PIPELINE_SOURCES.items():
        (version / "src" / package).mkdir(parents=True)
        for module in modules:
            shutil.copyfile(LIBS / package / module, version / "src" / package / module)
    config = PIPELINE_CONFIG.read_text().rstrip("\n") + "\n"
    config += "".join(
        f'parameters {{ key: "{key}" value {{ string_value: "{value}" }} }}\n'
        for key, value in (
            ("detector_model", detector),
            ("pad_models", ",".join(pad_models)),
            ("embedding_model", embedding),
            ("model_sha256", tree_sha256(version)),
        )
    )
    (target / "config.pbtxt").write_text(config)
    return target


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def triton_available() -> str | None:
    """None when the local Triton can run, otherwise why not."""
    binary = _pytriton_root() / "bin" / "tritonserver"
    if not binary.exists():
        return f"no Triton server at {binary} (run tools/dev setup: tools/envs/triton.sh)"
    return None


def _pytriton_root() -> Path:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return TRITON_VENV / "lib" / version / "site-packages" / "pytriton" / "tritonserver"


@dataclass
class LocalTritonServer:
    repository: Path
    grpc_port: int = 0
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout_seconds: float = 120.0) -> LocalTritonServer:
        root = _pytriton_root()
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        # The Python backend looks for its stub beside libtriton_python.so.
        backends = Path(tempfile.mkdtemp(prefix="triton-backends-"))
        (backends / "python").mkdir()
        for item in (root / "backends" / "python").iterdir():
            if item.is_file():
                os.symlink(item, backends / "python" / item.name)
        os.symlink(
            root / "python_backend_stubs" / version / "triton_python_backend_stub",
            backends / "python" / "triton_python_backend_stub",
        )
        self.grpc_port = self.grpc_port or _free_port()
        site_packages = root.parent.parent
        env = {
            # The stub's embedded interpreter finds its environment through
            # the `python3` first on PATH (as pytriton arranges it).
            "PATH": f"{TRITON_VENV / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", "/tmp"),
            "LD_LIBRARY_PATH": str(sysconfig.get_config_var("LIBDIR")),
            "PYTHONPATH": str(site_packages),
            "OMP_NUM_THREADS": "1",
        }
        self.log_path = backends / "tritonserver.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                str(root / "bin" / "tritonserver"),
                f"--model-repository={self.repository}",
                f"--backend-directory={backends}",
                f"--grpc-port={self.grpc_port}",
                "--allow-http=false",
                "--allow-metrics=false",
                "--exit-on-error=true",
                "--strict-readiness=true",
                "--log-verbose=0",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready(timeout_seconds)
        return self

    def _wait_ready(self, timeout_seconds: float) -> None:
        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(self.url)
        deadline = time.monotonic() + timeout_seconds
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(
                        f"tritonserver exited with {self.process.returncode}: {self.log_tail()}"
                    )
                try:
                    if client.is_server_ready(client_timeout=2):
                        return
                except Exception:  # noqa: BLE001 - not listening yet
                    pass
                time.sleep(0.2)
            raise RuntimeError(
                f"tritonserver not ready after {timeout_seconds} s: {self.log_tail()}"
            )
        finally:
            client.close()

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        # The backend directory (symlinks and the server log) was made by start().
        if self.log_path is not None:
            shutil.rmtree(self.log_path.parent, ignore_errors=True)
            self.log_path = None
