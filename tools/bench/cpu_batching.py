"""Would batching coinciding requests save CPU on these machines?

Issue 15 asks to "batch where requests coincide". On a GPU a batch of 16
costs about what one input does; on a CPU the models are compute-bound.
This times, on one ONNX Runtime thread, b single runs against one run of a
batch of b, for SFace (the embedding service: 112x112 aligned crops) and
MiniFASNetV2 (liveness's PAD: 80x80 crops), and prints the CPU per input.
A batching server would also wait for its batch to fill, which this leaves
out: it is the most batching could save.

    .venv/bin/python tools/bench/cpu_batching.py --batches 1,2,4,8 --repeats 20
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from identity_inference.embedder import FaceEmbedder
from identity_inference.manifest import PACKAGED_PAD_DIR, load_catalogue
from identity_inference.runners import OnnxRunner


def cpu_ms(work: Callable[[], object], repeats: int) -> float:
    """The median CPU of `work`, in ms."""
    runs = []
    for _ in range(repeats):
        started = time.process_time()
        work()
        runs.append(time.process_time() - started)
    return statistics.median(runs) * 1000


def compare(
    single: Callable[[int], object], batched: Callable[[int], object], b: int, repeats: int
) -> tuple[float, float]:
    """CPU ms per input: b single runs, and one batch of b."""
    singles = cpu_ms(lambda: [single(i) for i in range(b)], repeats)
    return singles / b, cpu_ms(lambda: batched(b), repeats) / b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,2,4,8")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    sizes = [int(b) for b in args.batches.split(",")]
    catalogue = load_catalogue()
    rng = np.random.default_rng(15)

    sface = OnnxRunner(catalogue["sface-2021dec"], intra_op_threads=1)
    sface.load()
    embedder = FaceEmbedder(sface)
    crops = [rng.integers(0, 255, (112, 112, 3), dtype=np.uint8) for _ in range(max(sizes))]
    pad = OnnxRunner(catalogue["minifasnet-v2"], intra_op_threads=1, pad_dir=PACKAGED_PAD_DIR)
    pad.load()
    pad_inputs = rng.random((max(sizes), 3, 80, 80), dtype=np.float32)

    print("CPU ms per input, median; ONNX Runtime on 1 thread")
    print("| model | batch | b single runs | one batch of b | batch ÷ singles |")
    print("|---|---:|---:|---:|---:|")
    models: dict[str, tuple[Callable[[int], object], Callable[[int], object]]] = {
        "SFace": (lambda i: embedder.embed([crops[i]]), lambda b: embedder.embed(crops[:b])),
        "MiniFASNetV2": (
            lambda i: pad.infer(pad_inputs[i : i + 1]),
            lambda b: pad.infer(pad_inputs[:b]),
        ),
    }
    for name, (single, batched) in models.items():
        for b in sizes:
            singles, batch = compare(single, batched, b, args.repeats)
            print(f"| {name} | {b} | {singles:.2f} | {batch:.2f} | {batch / singles:.2f} |")


if __name__ == "__main__":
    main()
