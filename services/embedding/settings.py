"""Settings of the embedding service, from `EMBEDDING_*` environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from identity_inference.pack import DEFAULT_EMBEDDING, InferenceSettings
from identity_runtime.settings import setting


@dataclass(frozen=True, kw_only=True)
class EmbeddingSettings(InferenceSettings):
    """Everything the embedding service reads from its environment."""

    RESIDENT_ENDPOINTS = ("triton_url",)

    embedding_model: str = setting(
        DEFAULT_EMBEDDING, "Manifest id of the face embedding model (e.g. qe-face-v3)"
    )
    backend: Literal["onnxruntime", "triton"] = setting(
        "onnxruntime", "In-process ONNX Runtime, or a Triton server"
    )
    triton_url: str = setting("", "host:port of Triton's gRPC endpoint (backend=triton)")
    triton_model_name: str = setting(
        "", "Model name in the Triton repository; empty = the manifest id"
    )
    triton_timeout_seconds: float = setting(10.0, "Timeout of one Triton call")
    triton_wait_seconds: float = setting(
        150.0,
        "At start, how long to wait (retrying) for Triton to be live and the model ready "
        "before giving up (within the startup probe's budget)",
    )

    def validate(self) -> list[tuple[str, str]]:
        problems = super().validate()
        if self.backend == "triton" and not self.triton_url:
            problems.append(("triton_url", "required when EMBEDDING_BACKEND=triton"))
        return problems
