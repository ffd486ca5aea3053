"""A Runner that sends the same tensors to a Triton Inference Server over gRPC.

The model repository (deploy/triton/model_repository, materialised by
tools/triton_repo.py) serves each model under its manifest id. `load()`
waits (up to `wait_seconds`, retrying with backoff) for the server to be
live and the model ready: on a first install Triton may still be pulling its
image or models, and embedding must not crash-loop meanwhile. It then checks
that the repository was built from the weights the manifest names (the
config's `weights_sha256`, identity_inference.triton_verify) and that the
declared input/output names and last axes match the manifest, so a
misconfigured repository stops the service at start-up instead of answering
garbage.

Calls balance round_robin over every Triton pod the name resolves to (the
chart's Triton Service is headless). The client is renewed every
`refresh_seconds`, which resolves the name again, so pods the autoscaler
adds get requests.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from identity_inference.manifest import ModelIntegrityError, ModelManifest
from identity_runtime import metrics
from identity_runtime.errors import Unavailable
from identity_runtime.logs import get_logger

log = get_logger("identity.inference.triton")
CHANNEL_ARGS = [
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.dns_min_time_between_resolutions_ms", 5000),
]


class NotYet(Exception):
    """Triton is not up, or the model not ready yet: worth waiting for."""


class TritonRunner:
    def __init__(
        self,
        manifest: ModelManifest,
        url: str,
        *,
        model_name: str | None = None,
        timeout_seconds: float = 10.0,
        wait_seconds: float = 0.0,
        refresh_seconds: float = 60.0,
    ):
        self.manifest = manifest
        self.url = url
        self.model_name = model_name or manifest.id
        self.timeout_seconds = timeout_seconds
        self.wait_seconds = wait_seconds
        self.refresh_seconds = refresh_seconds
        self._client: Any = None
        self._since = 0.0

    def _new_client(self) -> Any:
        import tritonclient.grpc as grpcclient

        return grpcclient.InferenceServerClient(self.url, channel_args=CHANNEL_ARGS)

    def load(self) -> None:
        deadline = time.monotonic() + self.wait_seconds
        pause = 1.0
        while True:
            client = self._new_client()
            try:
                metadata, config = self._ready(client)
                self._verify(metadata, config)
                break
            except NotYet as exc:
                client.close()
                if time.monotonic() + pause > deadline:
                    raise ModelIntegrityError([str(exc)]) from None
                log.warning("waiting for triton", reason=str(exc), retry_in_s=pause)
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
            except BaseException:
                client.close()
                raise
        self._client, self._since = client, time.monotonic()

    def _ready(self, client: Any) -> tuple[Any, Any]:
        from tritonclient.utils import InferenceServerException

        timeout = self.timeout_seconds
        try:
            if not client.is_server_live(client_timeout=timeout):
                raise NotYet(f"Triton at {self.url} is not live")
            if not client.is_model_ready(self.model_name, client_timeout=timeout):
                raise NotYet(f"Triton at {self.url}: model '{self.model_name}' is not ready")
            metadata = client.get_model_metadata(self.model_name, client_timeout=timeout)
            config = client.get_model_config(self.model_name, client_timeout=timeout)
        except InferenceServerException as exc:
            raise NotYet(f"Triton at {self.url}: {exc.message()}") from None
        return metadata, config.config

    def _verify(self, metadata: Any, config: Any) -> None:
        problems = []
        built_from = (
            config.parameters["weights_sha256"].string_value
            if "weights_sha256" in config.parameters
            else ""
        )
        if built_from != self.manifest.sha256:
            problems.append(
                f"the repository was built from weights {built_from or '(not recorded)'}, "
                f"the manifest names {self.manifest.sha256} (rebuild it with tools/triton_repo.py)"
            )
        inputs = [i.name for i in metadata.inputs]
        outputs = {o.name: list(o.shape) for o in metadata.outputs}
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

    def _current(self) -> Any:
        client = self._client
        if client is None:
            raise RuntimeError(f"Triton model {self.model_name} is not loaded")
        if time.monotonic() - self._since > self.refresh_seconds:
            # A new channel resolves the (headless) name again: new pods join.
            self._client, self._since = self._new_client(), time.monotonic()
            client.close()
        return self._client

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        client = self._current()
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
