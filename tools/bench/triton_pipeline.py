"""Throughput of the whole face pipeline: in-process vs per-model Triton calls vs one Triton call.

    .venv/bin/python tools/bench/triton_pipeline.py [--rounds 5] [--batches 1,4,16]
        [--images 32] [--out bench-results]

Work per frame, in every set-up: decode the JPEG, detect (YuNet), PAD on the
largest face (both MiniFASNet crops, fused), align it and embed it (SFace).
Frames are processed in groups of `batch`:

  in-process     this process, ONNX Runtime (1 intra-op thread per session):
                 each frame decoded and detected, then the group's PAD crops in
                 one call per PAD model and its aligned faces in one embedding
                 call (PadScorer.score_batch, FaceEmbedder.embed)
  per-model      the same code with each model on the local CPU Triton server
                 (TritonRunner): four gRPC hops per frame, frames sent in turn
  pipeline       identity_inference.triton_pipeline.TritonPipeline: one
                 `face_pipeline` call per frame, the group sent concurrently so
                 Triton's dynamic batcher gathers it (max_batch_size 16)

The set-ups run interleaved, round after round, on the same frames; the
figures are medians over rounds of frames per second (wall clock). A group
of `batch` frames is the unit of work; the machine has 2 shared cores, so
compare ratios, not absolute figures.

GPU sizing (an estimate, printed last): the script measures this machine's
FP32 matrix-multiply rate per CPU-second (numpy); NVIDIA's L4 datasheet gives
30.3 TFLOPS FP32 (121 TFLOPS FP16 tensor, dense). The models' CPU time per
frame (in-process, thread CPU time, so the shared machine's load matters
less than for wall time) is scaled by that ratio; decoding, cropping and
alignment stay on the node's CPUs.

Not a test: nothing asserts a time. Prints a Markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from common import publish

from identity_inference import images
from identity_inference.align import align_face
from identity_inference.detector import FaceDetector
from identity_inference.embedder import FaceEmbedder
from identity_inference.manifest import load_catalogue
from identity_inference.pad import PadScorer, pad_crop
from identity_inference.runners import OnnxRunner
from identity_inference.triton import TritonRunner
from identity_inference.triton_pipeline import PipelineResult, TritonPipeline
from identity_inference.triton_repo import (
    LocalTritonServer,
    materialise,
    materialise_pipeline,
    triton_available,
)
from tests.support import TESTDATA

STAGES = ("yunet-2023mar", "minifasnet-v2", "minifasnet-v1se", "sface-2021dec")
L4_FP32_TFLOPS = 30.3  # NVIDIA L4 datasheet (FP32); 121 dense FP16 tensor
FRAMES_PER_STEP_UP = 5  # baseline + 4 flashes (docs/kyc-tier.md, "Step-up latency")


class Timed:
    """A runner that adds up the time spent in inference calls."""

    def __init__(self, runner: Any):
        self.runner = runner
        self.manifest = runner.manifest
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.bytes = 0

    def load(self) -> None:
        self.runner.load()

    def unload(self) -> None:
        self.runner.unload()

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            outputs: dict[str, np.ndarray] = self.runner.infer(batch)
        finally:
            self.seconds += time.perf_counter() - started
            # ONNX Runtime with one intra-op thread computes on the calling thread.
            self.cpu_seconds += time.thread_time() - cpu
        # Tensor bytes each way (what a per-model call moves over the network).
        self.bytes += int(np.asarray(batch, dtype=np.float32).nbytes)
        self.bytes += sum(int(v.nbytes) for v in outputs.values())
        return outputs


class Local:
    """The pipeline on some runners (in-process or per-model Triton)."""

    def __init__(self, runners: dict[str, Any]):
        self.timed = {m: Timed(runners[m]) for m in STAGES}
        self.detector = FaceDetector(self.timed[STAGES[0]])
        self.pad = PadScorer([self.timed[STAGES[1]], self.timed[STAGES[2]]])
        self.embedder = FaceEmbedder(self.timed[STAGES[3]])
        self.seconds = self.cpu_seconds = 0.0
        self.frames = 0

    @property
    def model_seconds(self) -> float:
        return sum(t.seconds for t in self.timed.values())

    @property
    def model_cpu_seconds(self) -> float:
        return sum(t.cpu_seconds for t in self.timed.values())

    @property
    def tensor_bytes(self) -> int:
        return sum(t.bytes for t in self.timed.values())

    def reset(self) -> None:
        self.seconds, self.cpu_seconds, self.frames = 0.0, 0.0, 0
        for timed in self.timed.values():
            timed.seconds, timed.cpu_seconds, timed.bytes = 0.0, 0.0, 0

    def run(self, frames: list[bytes]) -> int:
        started, cpu = time.perf_counter(), time.thread_time()
        decoded = [images.decode(f) for f in frames]
        detected = [(image, self.detector.detect(image)) for image in decoded]
        found = [(image, faces[0]) for image, faces in detected if faces]
        crops = [
            {s.scale: pad_crop(image, face.box, s.scale, s.size) for s in self.pad.specs}
            for image, face in found
        ]
        aligned = [align_face(image, face.landmarks, self.embedder.size) for image, face in found]
        self.pad.score_batch(crops)
        self.embedder.embed(aligned)
        self.seconds += time.perf_counter() - started
        self.cpu_seconds += time.thread_time() - cpu
        self.frames += len(frames)
        return len(found)


def pipeline_bytes(frames: list[bytes], results: list[PipelineResult]) -> int:
    """Frame bytes up, output tensor bytes down (one face_pipeline call per frame)."""
    total = sum(len(f) for f in frames)
    for result in results:
        faces = len(result.faces)
        total += 4 + faces * (4 + 4 + 1 + 10) * 4 + 4 + 1
        if result.pad is not None:
            total += sum(len(s.probabilities) for s in result.pad.scores) * 4
        if result.embedding is not None:
            total += int(result.embedding.nbytes)
    return total


def sgemm_gflops_per_cpu_second(size: int = 1024, repeats: int = 8) -> float:
    """FP32 matrix-multiply rate per CPU-second (process CPU time over every
    BLAS thread, so other load on the machine barely changes it)."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b = a.T.copy()
    a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        a @ b
        best = min(best, time.process_time() - started)
    return 2 * size**3 / best / 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", default="1,4,16")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--no-per-model", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args()
    problem = triton_available()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    batches = [int(b) for b in args.batches.split(",")]
    photos = sorted((TESTDATA / "faces").glob("img*.jpg"))[: args.images]
    frames = [p.read_bytes() for p in photos]
    catalogue = load_catalogue(None)
    onnx = {m: OnnxRunner(catalogue[m], intra_op_threads=1) for m in STAGES}
    for runner in onnx.values():
        runner.load()
    in_process = Local(onnx)

    repository = Path(tempfile.mkdtemp(prefix="bench-triton-pipeline-"))
    materialise(repository, models=STAGES, backend="python", intra_op_threads=1)
    materialise_pipeline(repository)
    server = LocalTritonServer(repository).start()
    setups: dict[str, Callable[[list[bytes]], object]] = {"in-process": in_process.run}
    try:
        remote = {m: TritonRunner(catalogue[m], server.url, timeout_seconds=60) for m in STAGES}
        for triton_runner in remote.values():
            triton_runner.load()
        per_model = Local(remote)
        pipeline = TritonPipeline(server.url, timeout_seconds=120, wait_seconds=60)
        pipeline.load()
        if not args.no_per_model:
            setups["per-model triton"] = per_model.run
        setups["pipeline triton"] = pipeline.run
        # Warm-up: every set-up, every batch size, once.
        for run in setups.values():
            for batch in batches:
                run(frames[:batch])
        rates: dict[str, dict[int, list[float]]] = {s: {b: [] for b in batches} for s in setups}
        in_process.reset()
        for _ in range(args.rounds):
            for batch in batches:
                groups = [frames[i : i + batch] for i in range(0, len(frames) - batch + 1, batch)]
                for name, run in setups.items():
                    started = time.perf_counter()
                    for group in groups:
                        run(group)
                    elapsed = time.perf_counter() - started
                    count = sum(len(g) for g in groups)
                    rates[name][batch].append(count / elapsed)
        model_share = in_process.model_seconds / in_process.frames
        # Bytes moved per frame: per-model calls vs one pipeline call.
        per_model.reset()
        per_model.run(frames)
        per_model_bytes = per_model.tensor_bytes / len(frames)
        one_call_bytes = pipeline_bytes(frames, pipeline.run(frames)) / len(frames)
        other_seconds = (in_process.seconds - in_process.model_seconds) / in_process.frames
        pipeline.unload()
        for triton_runner in remote.values():
            triton_runner.unload()
    finally:
        server.stop()
    gflops = sgemm_gflops_per_cpu_second()

    medians = {s: {b: statistics.median(v) for b, v in per.items()} for s, per in rates.items()}
    report = [
        f"{len(frames)} photos x {args.rounds} rounds, interleaved; frames/s (median over rounds)",
        "",
        "| batch | " + " | ".join(setups) + " | pipeline / in-process |",
        "|---:|" + "---:|" * (len(setups) + 1),
    ]
    for batch in batches:
        cells = " | ".join(f"{medians[s][batch]:.1f}" for s in setups)
        ratio = medians["pipeline triton"][batch] / medians["in-process"][batch]
        report.append(f"| {batch} | {cells} | x{ratio:.2f} |")
    frame_seconds = model_share + other_seconds
    ratio = L4_FP32_TFLOPS * 1000 / gflops
    gpu_model_seconds = model_share / ratio
    # Small models reach a fraction of a GPU's peak; a quarter is the lower estimate.
    gpu_low = model_share / (ratio * 0.25)
    report += [
        "",
        f"Bytes moved per frame: per-model calls {per_model_bytes / 1e6:.2f} MB"
        f" (float32 tensors both ways), one pipeline call {one_call_bytes / 1e3:.1f} kB"
        f" (the JPEG up, the results down): x{per_model_bytes / one_call_bytes:.0f}",
        "",
        "GPU sizing (ESTIMATE, not measured on a GPU):",
        f"  this machine's sgemm: {gflops:.0f} GFLOPS FP32 per CPU-second (numpy);"
        f" L4 datasheet FP32: {L4_FP32_TFLOPS} TFLOPS; ratio x{ratio:.0f}",
        f"  in-process CPU time per frame (all batch sizes): {frame_seconds * 1000:.1f} ms,"
        f" of which model inference {model_share * 1000:.1f} ms"
        f" (= {model_share * gflops:.2f} GFLOP at the sgemm rate), the rest (decode,"
        f" letterbox, NMS, crops, align) {other_seconds * 1000:.1f} ms",
        f"  model time per frame on an L4 at that ratio: {gpu_model_seconds * 1000:.3f} ms"
        f" -> {1 / gpu_model_seconds:.0f} frames/s"
        f" = {1 / gpu_model_seconds / FRAMES_PER_STEP_UP:.0f} step-ups/s (5 frames each);"
        f" at 25 % of peak {1 / gpu_low / FRAMES_PER_STEP_UP:.0f} step-ups/s;"
        " if the CPU side keeps up",
        f"  CPU side: {other_seconds * 1000:.1f} ms per frame per core on this machine ->"
        f" {1 / max(other_seconds, 1e-9) / FRAMES_PER_STEP_UP:.0f} step-ups/s per core",
    ]
    results = {
        "frames": len(frames),
        "rounds": args.rounds,
        "rates": {s: {str(b): v for b, v in per.items()} for s, per in rates.items()},
        "medians": {s: {str(b): v for b, v in per.items()} for s, per in medians.items()},
        "model_seconds_per_frame": model_share,
        "other_seconds_per_frame": other_seconds,
        "bytes_per_frame": {"per_model": per_model_bytes, "pipeline": one_call_bytes},
        "sgemm_gflops": gflops,
        "l4_fp32_tflops": L4_FP32_TFLOPS,
    }
    publish(args.out / "triton_pipeline.json", results, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
