"""A Runner that sends the same tensors to a Triton Inference Server over gRPC.

The model repository (deploy/triton/model_repository, materialised by
tools/triton_repo.py) serves each model under its manifest id; `load()`
checks that the server is live, the model ready, and that its declared
input/output names and last axes match the manifest, so a misconfigured
repository stops the service at start-up instead of answering garbage.
"""

from __future__ import annotations

import numpy as np

from identity_inference.manifest import ModelIntegrityError, ModelManifest
from identity_runtime import metrics
from identity_runtime.errors import Unavailable


class TritonRunner:
    def __init__(
        self,
        manifest: ModelManifest,
        url: str,
        *,
        model_name: str | None = None,
        timeout_seconds: float = 10.0,
    ):
        self.manifest = manifest
        self.url = url
        self.model_name = model_name or manifest.id
        self.timeout_seconds = timeout_seconds
        self._client = None

    def load(self) -> None:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        client = grpcclient.InferenceServerClient(self.url)
        try:
            if not client.is_server_live(client_timeout=self.timeout_seconds):
                raise ModelIntegrityError([f"Triton at {self.url} is not live"])
            if not client.is_model_ready(self.model_name, client_timeout=self.timeout_seconds):
                raise ModelIntegrityError(
                    [f"Triton at {self.url}: model '{self.model_name}' is not ready"]
                )
            metadata = client.get_model_metadata(
                self.model_name, client_timeout=self.timeout_seconds
            )
        except InferenceServerException as exc:
            raise ModelIntegrityError([f"Triton at {self.url}: {exc.message()}"]) from None
        inputs = [i.name for i in metadata.inputs]
        outputs = {o.name: list(o.shape) for o in metadata.outputs}
        problems = []
        if inputs != [self.manifest.input.name]:
            problems.append(
                f"inputs {inputs} differ from the manifest's [{self.manifest.input.name}]"
            )
        for spec in self.manifest.outputs:
            shape = outputs.get(spec.name)
            if shape is None:
                problems.append(f"output '{spec.name}' is missing")
            elif spec.shape[-1] > 0 and shape[-1] != spec.shape[-1]:
                problems.append(
                    f"output '{spec.name}' has last axis {shape[-1]}, "
                    f"manifest says {spec.shape[-1]}"
                )
        if problems:
            raise ModelIntegrityError([f"Triton model '{self.model_name}': {p}" for p in problems])
        self._client = client

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        client = self._client
        if client is None:
            raise RuntimeError(f"Triton model {self.model_name} is not loaded")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        tensor = grpcclient.InferInput(self.manifest.input.name, list(batch.shape), "FP32")
        tensor.set_data_from_numpy(batch)
        wanted = [grpcclient.InferRequestedOutput(o.name) for o in self.manifest.outputs]
        try:
            with metrics.model_stage(self.manifest.role, self.manifest.id, "triton"):
                result = client.infer(
                    self.model_name, [tensor], outputs=wanted, client_timeout=self.timeout_seconds
                )
        except InferenceServerException as exc:
            raise Unavailable(
                f"Triton inference failed: {exc.message()}",
                "DEPENDENCY_UNAVAILABLE",
                {"service": "triton"},
            ) from None
        return {o.name: result.as_numpy(o.name) for o in self.manifest.outputs}

    def unload(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
