"""Model runners: one small protocol, two engines.

Every runner has `load()`, `infer(batch) -> outputs`, `unload()`. `batch` is
the model's single input as an array whose axis 0 is the batch; `outputs` maps
each output name of the manifest to an array with the same batch size.
`OnnxRunner` runs in-process on ONNX Runtime; `TritonRunner`
(identity_inference.triton) sends the same tensors to a Triton server.
Callers pick one in their bootstrap and never care which.

ONNX Runtime's defaults are wrong for a shared 2-core machine: a pool sized
to every core with spinning threads. Sessions here get an explicit intra-op
thread count (setting), one inter-op thread, sequential execution and no
spinning.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from identity_inference import onnx_prep
from identity_inference.manifest import ModelIntegrityError, ModelManifest, read_verified
from identity_runtime import metrics

if TYPE_CHECKING:
    # Imported where used: loading ONNX Runtime is slow. (It has no type information.)
    import onnxruntime as ort


class Runner(Protocol):
    manifest: ModelManifest

    def load(self) -> None: ...

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]: ...

    def unload(self) -> None: ...


def default_intra_op_threads() -> int:
    """Half the cores (at least one): several models and services share a node."""
    return max(1, (os.cpu_count() or 2) // 2)


def session_options(intra_op_threads: int) -> ort.SessionOptions:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = (
        intra_op_threads if intra_op_threads > 0 else default_intra_op_threads()
    )
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning threads burn the cores other services need while idle.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def prepared_model_bytes(manifest: ModelManifest, pad_dir: Path | None = None) -> bytes:
    """Verified weights, transformed as the manifest asks (fold, dynamic batch)."""
    return onnx_prep.prepare(
        read_verified(manifest, pad_dir),
        fold_dequantize=manifest.fold_dequantize,
        dynamic_batch=manifest.dynamic_batch,
    )


class OnnxRunner:
    """A model in-process on ONNX Runtime's CPU provider."""

    def __init__(
        self,
        manifest: ModelManifest,
        *,
        pad_dir: Path | None = None,
        intra_op_threads: int = 0,
        input_size: int | None = None,
    ):
        self.manifest = manifest
        self.pad_dir = pad_dir
        self.intra_op_threads = intra_op_threads
        # A square spatial input size other than the exported one (the face
        # detector's small region-of-interest graph); None = as exported.
        self.input_size = input_size
        self._session = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def load(self) -> None:
        import onnxruntime as ort

        with self._lock:
            if self._session is not None:
                return
            model = prepared_model_bytes(self.manifest, self.pad_dir)
            if self.input_size is not None:
                model = onnx_prep.set_input_size(model, self.input_size, self.input_size)
            try:
                session = ort.InferenceSession(
                    model,
                    session_options(self.intra_op_threads),
                    providers=["CPUExecutionProvider"],
                )
            except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
                raise ModelIntegrityError(
                    [f"model {self.manifest.id}: ONNX Runtime cannot load it ({exc})"]
                ) from None
            self._check_contract(session)
            self._session = session

    def _check_contract(self, session: ort.InferenceSession) -> None:
        inputs = [i.name for i in session.get_inputs()]
        outputs = {o.name: o.shape for o in session.get_outputs()}
        problems = []
        if inputs != [self.manifest.input.name]:
            problems.append(
                f"inputs {inputs} differ from the manifest's [{self.manifest.input.name}]"
            )
        for spec in self.manifest.outputs:
            if spec.name not in outputs:
                problems.append(f"output '{spec.name}' is missing")
            elif spec.shape and len(outputs[spec.name]) == len(spec.shape):
                # The embedding dimension the manifest declares must be what the graph produces.
                last = outputs[spec.name][-1]
                if isinstance(last, int) and spec.shape[-1] > 0 and last != spec.shape[-1]:
                    problems.append(
                        f"output '{spec.name}' has last axis {last}, manifest says {spec.shape[-1]}"
                    )
        if problems:
            raise ModelIntegrityError([f"model {self.manifest.id}: {p}" for p in problems])

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        session = self._session
        if session is None:
            raise RuntimeError(f"model {self.manifest.id} is not loaded")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        with metrics.model_stage(self.manifest.role, self.manifest.id, "onnxruntime"):
            return self._run(session, batch)

    def _run(self, session: ort.InferenceSession, batch: np.ndarray) -> dict[str, np.ndarray]:
        names = [o.name for o in self.manifest.outputs]
        if self.manifest.max_batch == 1 and batch.shape[0] != 1:
            # Fixed-batch graphs (YuNet) take one item per call.
            parts = [
                session.run(names, {self.manifest.input.name: batch[i : i + 1]})
                for i in range(batch.shape[0])
            ]
            return {name: np.concatenate([p[k] for p in parts]) for k, name in enumerate(names)}
        results = session.run(names, {self.manifest.input.name: batch})
        return dict(zip(names, results, strict=True))

    def unload(self) -> None:
        with self._lock:
            self._session = None
