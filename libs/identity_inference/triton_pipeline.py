"""The whole face pipeline in one Triton call per frame (issue 15).

`TritonPipeline` sends encoded frames to the `face_pipeline` BLS model
(deploy/triton/face_pipeline_model.py), which decodes, detects, aligns, runs
both PAD models and the embedding model inside Triton and returns what the
in-process `FacePipeline` computes: the faces (boxes, landmarks, scores), the
largest face's PAD verdict and its L2-normalised embedding. Frames are sent
as concurrent requests, so Triton's dynamic batcher gathers them (up to the
model's `max_batch_size`, 16) into one execution whose PAD crops and aligned
faces go to each model in one batch.

`load()` waits for the server like `TritonRunner` and checks each stage model
(detector, PAD models, embedding model) against the local manifests through
`TritonRunner`'s own checks (weights sha256, input/output names, dimension),
then that `face_pipeline` is ready and built for those stage models. A server
that stops answering later gives `Unavailable` (DEPENDENCY_UNAVAILABLE); a
frame the server cannot decode gives the same INVALID_ARGUMENT reason the
in-process decoder raises.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from identity_inference.detector import Face
from identity_inference.manifest import ModelIntegrityError, ModelManifest, load_catalogue
from identity_inference.pad import ModelScore, PadResult, crop_spec
from identity_inference.triton import CHANNEL_ARGS, NotYet, TritonRunner
from identity_runtime.errors import InvalidArgument, Unavailable
from identity_runtime.logs import get_logger

log = get_logger("identity.inference.triton_pipeline")
PIPELINE_MODEL = "face_pipeline"
OUTPUTS = (
    "face_count",
    "boxes",
    "predicted_boxes",
    "scores",
    "landmarks",
    "pad_probabilities",
    "pad_fused",
    "pad_live",
    "embedding",
)
_ERROR = re.compile(r"INVALID_ARGUMENT ([A-Z_]+): (.*)", re.DOTALL)


@dataclass(frozen=True)
class PipelineResult:
    """One frame: every face (largest first); PAD and embedding of the largest."""

    faces: tuple[Face, ...]
    pad: PadResult | None
    embedding: np.ndarray | None


class TritonPipeline:
    def __init__(
        self,
        url: str,
        *,
        detector: str = "yunet-2023mar",
        pad_models: tuple[str, ...] = ("minifasnet-v2", "minifasnet-v1se"),
        embedding: str = "sface-2021dec",
        model_dir: Path | None = None,
        model_name: str = PIPELINE_MODEL,
        timeout_seconds: float = 30.0,
        wait_seconds: float = 0.0,
    ):
        catalogue = load_catalogue(model_dir)
        missing = [m for m in (detector, *pad_models, embedding) if m not in catalogue]
        if missing:
            raise ModelIntegrityError([f"no manifest for {', '.join(missing)}"])
        self.url = url
        self.model_name = model_name
        self.timeout_seconds = timeout_seconds
        self.wait_seconds = wait_seconds
        self.stages: dict[str, ModelManifest] = {
            "detector_model": catalogue[detector],
            "embedding_model": catalogue[embedding],
        }
        self.pad_manifests = [catalogue[m] for m in pad_models]
        self.pad_specs = [crop_spec(m) for m in self.pad_manifests]
        thresholds = [m.thresholds.get("live", 0.5) for m in self.pad_manifests]
        self.pad_threshold = float(np.mean(thresholds))
        self._client: Any = None

    def load(self) -> None:
        """Wait for the server, check every stage model and the pipeline model."""
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        manifests = [*self.stages.values(), *self.pad_manifests]
        deadline = time.monotonic() + self.wait_seconds
        for manifest in manifests:
            stage = TritonRunner(
                manifest,
                self.url,
                timeout_seconds=self.timeout_seconds,
                wait_seconds=max(0.0, deadline - time.monotonic()),
            )
            stage.load()  # raises ModelIntegrityError with the reason
            stage.unload()
        client = grpcclient.InferenceServerClient(self.url, channel_args=CHANNEL_ARGS)
        try:
            if not client.is_model_ready(self.model_name, client_timeout=self.timeout_seconds):
                raise NotYet(f"Triton at {self.url}: model '{self.model_name}' is not ready")
            config = client.get_model_config(
                self.model_name, client_timeout=self.timeout_seconds
            ).config
        except (InferenceServerException, NotYet) as exc:
            client.close()
            message = exc.message() if isinstance(exc, InferenceServerException) else str(exc)
            raise ModelIntegrityError([f"Triton pipeline: {message}"]) from None
        expected = {
            "detector_model": self.stages["detector_model"].id,
            "embedding_model": self.stages["embedding_model"].id,
            "pad_models": ",".join(m.id for m in self.pad_manifests),
        }
        problems = []
        for key, value in expected.items():
            served = config.parameters[key].string_value if key in config.parameters else ""
            if served != value:
                problems.append(f"{key} is '{served or '(not set)'}', expected '{value}'")
        if problems:
            client.close()
            raise ModelIntegrityError([f"Triton model '{self.model_name}': {p}" for p in problems])
        self._client = client

    def unload(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def run(self, frames: Sequence[bytes]) -> list[PipelineResult]:
        """Every frame through the pipeline, as concurrent requests (one call each)."""
        import tritonclient.grpc as grpcclient

        client = self._client
        if client is None:
            raise RuntimeError("the Triton pipeline is not loaded")
        done = threading.Semaphore(0)
        results: list[Any] = [None] * len(frames)

        def finished(index: int) -> Any:
            def callback(result: Any, error: Any) -> None:
                results[index] = error if error is not None else result
                done.release()

            return callback

        wanted = [grpcclient.InferRequestedOutput(name) for name in OUTPUTS]
        sent = 0
        try:
            for index, frame in enumerate(frames):
                tensor = grpcclient.InferInput("image", [1, 1], "BYTES")
                tensor.set_data_from_numpy(np.array([[bytes(frame)]], dtype=np.object_))
                client.async_infer(
                    self.model_name,
                    [tensor],
                    finished(index),
                    outputs=wanted,
                    client_timeout=self.timeout_seconds,
                )
                sent += 1
        finally:
            for _ in range(sent):
                done.acquire()
        return [self._result(item) for item in results]

    def _result(self, item: Any) -> PipelineResult:
        from tritonclient.utils import InferenceServerException

        if isinstance(item, InferenceServerException):
            message = item.message() or ""
            match = _ERROR.search(message)
            if match:
                raise InvalidArgument(match.group(2), match.group(1), {"field": "image"})
            raise Unavailable(
                f"Triton pipeline failed: {message}",
                "DEPENDENCY_UNAVAILABLE",
                {"service": "triton"},
            )
        count = int(item.as_numpy("face_count").reshape(-1)[0])
        boxes = item.as_numpy("boxes").reshape(count, 4)
        predicted = item.as_numpy("predicted_boxes").reshape(count, 4)
        scores = item.as_numpy("scores").reshape(count)
        landmarks = item.as_numpy("landmarks").reshape(count, 5, 2)
        faces = tuple(
            Face(
                box=tuple(float(v) for v in boxes[i]),  # type: ignore[arg-type]
                landmarks=landmarks[i].astype(np.float32),
                score=float(scores[i]),
                predicted_box=tuple(float(v) for v in predicted[i]),  # type: ignore[arg-type]
            )
            for i in range(count)
        )
        if not faces:
            return PipelineResult(faces, None, None)
        probabilities = item.as_numpy("pad_probabilities")[0]
        model_scores = [
            ModelScore.of(manifest, spec, probs)
            for manifest, spec, probs in zip(
                self.pad_manifests, self.pad_specs, probabilities, strict=True
            )
        ]
        pad = PadResult(
            live=bool(item.as_numpy("pad_live").reshape(-1)[0]),
            fused_live_score=float(item.as_numpy("pad_fused").reshape(-1)[0]),
            threshold=self.pad_threshold,
            scores=tuple(model_scores),
        )
        embedding = item.as_numpy("embedding")[0].astype(np.float32)
        return PipelineResult(faces, pad, embedding)
