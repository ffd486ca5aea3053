"""Settings every inference service shares, and building verified runners from them.

Services subclass `InferenceSettings` (which extends the runtime's
`ServiceSettings`), so each reads `<PREFIX>_MODEL_DIR`,
`<PREFIX>_INTRA_OP_THREADS`, ... with its own prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from identity_inference.images import ImageLimits
from identity_inference.manifest import (
    ROLE_FACE_DETECTOR,
    ROLE_FACE_EMBEDDING,
    ROLE_PAD,
    ModelManifest,
    load_catalogue,
    select,
)
from identity_inference.runners import OnnxRunner
from identity_runtime import metrics
from identity_runtime.settings import ServiceSettings, setting

DEFAULT_DETECTOR = "yunet-2023mar"
DEFAULT_EMBEDDING = "sface-2021dec"
DEFAULT_PAD_MODELS = ("minifasnet-v2", "minifasnet-v1se")


@dataclass(frozen=True, kw_only=True)
class InferenceSettings(ServiceSettings):
    model_dir: Path | None = setting(
        None,
        "Directory of operator models: <id>.json manifests beside their weights "
        "(overrides the packaged ones)",
    )
    intra_op_threads: int = setting(
        0, "ONNX Runtime intra-op threads per session; 0 = half the cores, at least 1"
    )
    max_image_pixels: int = setting(
        ImageLimits.max_pixels,
        "Images whose header declares more pixels are refused before decoding",
    )
    track: Literal["stable", "canary"] = setting(
        "stable",
        "Rollout track of this process, a label of identity_model_info: the chart's canary "
        "Deployments run with canary (the automatic-rollback rules compare the two)",
    )

    def validate(self) -> list[tuple[str, str]]:
        problems = super().validate()
        if self.intra_op_threads < 0:
            problems.append(("intra_op_threads", "must be 0 (auto) or positive"))
        if self.model_dir is not None and not self.model_dir.is_dir():
            problems.append(("model_dir", f"{self.model_dir} is not a directory"))
        if self.max_image_pixels < 10_000:
            problems.append(("max_image_pixels", "must be at least 10000"))
        return problems


def catalogue(settings: InferenceSettings) -> dict[str, ModelManifest]:
    return load_catalogue(settings.model_dir)


def onnx_runner(
    manifest: ModelManifest,
    settings: InferenceSettings,
    pad_dir: Path | None = None,
    input_size: int | None = None,
) -> OnnxRunner:
    """A verified, loaded in-process runner (raises ModelIntegrityError otherwise);
    `input_size` fixes a fully convolutional graph's square input at another size."""
    runner = OnnxRunner(
        manifest,
        pad_dir=pad_dir,
        intra_op_threads=settings.intra_op_threads,
        input_size=input_size,
    )
    runner.load()
    announce(manifest, settings)
    return runner


def announce(manifest: ModelManifest, settings: InferenceSettings) -> None:
    """The loaded model and this process's track in identity_model_info."""
    metrics.MODEL_INFO.labels(manifest.role, manifest.id, manifest.version, settings.track).set(1)


def detector_manifest(settings: InferenceSettings, model_id: str) -> ModelManifest:
    return select(catalogue(settings), model_id, ROLE_FACE_DETECTOR)


def embedding_manifest(settings: InferenceSettings, model_id: str) -> ModelManifest:
    return select(catalogue(settings), model_id, ROLE_FACE_EMBEDDING)


def pad_manifests(settings: InferenceSettings, model_ids: tuple[str, ...]) -> list[ModelManifest]:
    known = catalogue(settings)
    return [select(known, model_id, ROLE_PAD) for model_id in model_ids]
