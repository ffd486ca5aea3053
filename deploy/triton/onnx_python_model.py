"""Triton Python-backend model that runs a prepared ONNX graph with ONNX Runtime.

Used where the Triton server has no ONNX Runtime backend (the CPU server
bundled in nvidia-pytriton). `tools/triton_repo.py --backend python` copies
this file to `<model>/1/model.py` beside `model.onnx`. With dynamic batching
Triton hands several requests to one `execute`: they are concatenated along
the batch axis, run in one ONNX Runtime call, and split back.
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(parameters.get("intra_op_threads", "1"))
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input_name = config["input"][0]["name"]
        self.output_names = [o["name"] for o in config["output"]]
        self.batched = int(config.get("max_batch_size", 0)) > 0

    def execute(self, requests):
        arrays = [
            pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy() for r in requests
        ]
        if not self.batched:
            results = [self.session.run(self.output_names, {self.input_name: a}) for a in arrays]
        else:
            sizes = [a.shape[0] for a in arrays]
            outputs = self.session.run(self.output_names, {self.input_name: np.concatenate(arrays)})
            results, start = [], 0
            for size in sizes:
                results.append([o[start : start + size] for o in outputs])
                start += size
        return [
            pb_utils.InferenceResponse(
                [
                    pb_utils.Tensor(n, np.ascontiguousarray(o))
                    for n, o in zip(self.output_names, outs, strict=True)
                ]
            )
            for outs in results
        ]
