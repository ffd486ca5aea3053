"""Triton Python-backend (BLS) model `face_pipeline`: decode -> detect -> align -> PAD -> embed.

One request = one encoded frame (JPEG, PNG or WebP bytes), so a frame
crosses the network once instead of once per model. The stages run the
project's own code (identity_inference: image decoding with its limits,
YuNet letterbox and decoding, PAD crops and fusion, 5-point alignment,
embedding normalisation), copied beside this file by
`tools/triton_repo.py` (`1/src/`), and the models are the sibling models of
the same repository, called through BLS: on a GPU node they are the ONNX
Runtime / TensorRT models of deploy/triton/model_repository; on the CPU
server bundled in nvidia-pytriton they are the Python-backend variants.

With dynamic batching Triton hands several requests to one `execute`: each
frame is decoded and detected on its own (YuNet's graph fixes batch 1), then
the PAD crops of every frame go to each MiniFASNet model in one call and the
aligned faces to the embedding model in one call.

Outputs per frame: `face_count`, `boxes` / `predicted_boxes` (x, y, w, h in
frame pixels, largest first), `scores`, `landmarks` (5 x 2 per face), and for
the largest face `pad_probabilities` (one softmax row per PAD model, in the
`pad_models` order), `pad_fused`, `pad_live` and the L2-normalised
`embedding` (zeros without a face). A frame that cannot be decoded gets an
error response "INVALID_ARGUMENT <REASON>: <message>" (no content echoed).
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from identity_inference import images  # noqa: E402
from identity_inference.align import align_face  # noqa: E402
from identity_inference.detector import FaceDetector  # noqa: E402
from identity_inference.embedder import FaceEmbedder  # noqa: E402
from identity_inference.manifest import read_manifest  # noqa: E402
from identity_inference.pad import PadScorer, pad_crop  # noqa: E402
from identity_runtime.errors import InvalidArgument  # noqa: E402


class BlsRunner:
    """The identity_inference Runner protocol over a sibling model (BLS)."""

    def __init__(self, manifest):
        self.manifest = manifest
        self.names = [o.name for o in manifest.outputs]

    def load(self):
        pass

    def unload(self):
        pass

    def _call(self, batch):
        request = pb_utils.InferenceRequest(
            model_name=self.manifest.id,
            requested_output_names=self.names,
            inputs=[pb_utils.Tensor(self.manifest.input.name, np.ascontiguousarray(batch))],
        )
        response = request.exec()
        if response.has_error():
            raise pb_utils.TritonModelException(f"{self.manifest.id}: {response.error().message()}")
        return {
            name: pb_utils.get_output_tensor_by_name(response, name).as_numpy()
            for name in self.names
        }

    def infer(self, batch):
        batch = np.asarray(batch, dtype=np.float32)
        if self.manifest.max_batch == 1 and batch.shape[0] != 1:
            parts = [self._call(batch[i : i + 1]) for i in range(batch.shape[0])]
            return {n: np.concatenate([p[n] for p in parts]) for n in self.names}
        return self._call(batch)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        here = Path(args["model_repository"]) / args["model_version"] / "manifests"

        def manifest(model_id):
            return read_manifest(here / f"{model_id}.json")

        self.detector = FaceDetector(BlsRunner(manifest(parameters["detector_model"])))
        self.embedder = FaceEmbedder(BlsRunner(manifest(parameters["embedding_model"])))
        pad_models = [m for m in parameters["pad_models"].split(",") if m]
        self.pad = PadScorer([BlsRunner(manifest(m)) for m in pad_models])
        self.pad_classes = max(int(r.manifest.outputs[0].shape[-1]) for r in self.pad.runners)
        self.limits = images.ImageLimits(
            max_pixels=int(parameters.get("max_image_pixels", images.ImageLimits.max_pixels))
        )

    def _frame(self, request):
        data = pb_utils.get_input_tensor_by_name(request, "image").as_numpy().reshape(-1)[0]
        return images.decode(bytes(data), self.limits, field="image")

    def execute(self, requests):
        responses = [None] * len(requests)
        work = []  # (index, image, faces)
        for index, request in enumerate(requests):
            try:
                image = self._frame(request)
            except InvalidArgument as exc:
                responses[index] = pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(f"INVALID_ARGUMENT {exc.reason}: {exc}")
                )
                continue
            work.append((index, image, self.detector.detect(image)))
        with_face = [(i, image, faces[0]) for i, image, faces in work if faces]
        pad_results = self.pad.score_batch(
            [
                {
                    spec.scale: pad_crop(image, face.box, spec.scale, spec.size)
                    for spec in self.pad.specs
                }
                for _, image, face in with_face
            ]
        )
        embeddings = self.embedder.embed(
            [align_face(image, face.landmarks, self.embedder.size) for _, image, face in with_face]
        )
        primary = {i: (pad_results[k], embeddings[k]) for k, (i, _, _) in enumerate(with_face)}
        for index, _, faces in work:
            responses[index] = self._response(faces, primary.get(index))
        return responses

    def _response(self, faces, primary):
        count = len(faces)
        boxes = np.array([f.box for f in faces], dtype=np.float32).reshape(count, 4)
        predicted = np.array([f.predicted_box or f.box for f in faces], dtype=np.float32).reshape(
            count, 4
        )
        scores = np.array([f.score for f in faces], dtype=np.float32)
        landmarks = np.array([f.landmarks for f in faces], dtype=np.float32).reshape(count, 5, 2)
        models = len(self.pad.specs)
        if primary is None:
            probabilities = np.zeros((models, self.pad_classes), dtype=np.float32)
            fused, live = 0.0, False
            embedding = np.zeros(self.embedder.dimension, dtype=np.float32)
        else:
            result, embedding = primary
            probabilities = np.array([s.probabilities for s in result.scores], dtype=np.float32)
            fused, live = result.fused_live_score, result.live
        tensors = {
            "face_count": np.array([[count]], dtype=np.int32),
            "boxes": boxes[None],
            "predicted_boxes": predicted[None],
            "scores": scores[None],
            "landmarks": landmarks[None],
            "pad_probabilities": probabilities[None],
            "pad_fused": np.array([[fused]], dtype=np.float32),
            "pad_live": np.array([[live]], dtype=np.bool_),
            "embedding": np.asarray(embedding, dtype=np.float32)[None],
        }
        return pb_utils.InferenceResponse(
            [pb_utils.Tensor(name, np.ascontiguousarray(value)) for name, value in tensors.items()]
        )
