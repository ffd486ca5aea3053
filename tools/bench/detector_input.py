"""Could capture-quality detect the baseline frame at a smaller input than 640?

YuNet's graph is fully convolutional: at 480, 416 or 320 it costs a fraction
of 640's CPU. What a smaller input would change downstream is the landmarks,
from which the face is aligned for SFace. For every photo under
tests/data/faces (scaled to an SDK frame's 640-pixel long side), this
detects the largest face at each input size and reports, against 640:

- CPU per detection (letterbox + graph + decoding, the least of 3 runs,
  ONNX Runtime on one thread);
- how far the landmarks move (the largest of the five, in % of the face's width);
- the cosine between the SFace probe aligned on those landmarks and the probe
  aligned on 640's (1.0: the same probe);
- photos where the number of faces found differs.

    .venv/bin/python tools/bench/detector_input.py --sizes 640,480,416,320
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from identity_inference.detector import Face, FaceDetector
from identity_inference.embedder import FaceEmbedder
from identity_inference.manifest import load_catalogue
from identity_inference.runners import OnnxRunner

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "tests" / "data" / "faces"
FRAME_LONG_SIDE = 640
REFERENCE_SIZE = 640


@dataclass
class Column:
    cpu_ms: list[float] = field(default_factory=list)
    landmark_shift_pct: list[float] = field(default_factory=list)
    cosine: list[float] = field(default_factory=list)
    no_face: int = 0
    other_count: int = 0


def sdk_frame(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, f"unreadable photo {path}"
    height, width = image.shape[:2]
    scale = FRAME_LONG_SIDE / max(height, width)
    if scale >= 1:
        return image
    size = (round(width * scale), round(height * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def detectors(sizes: list[int]) -> dict[int, FaceDetector]:
    catalogue = load_catalogue()
    found = {}
    for size in sizes:
        runner = OnnxRunner(
            catalogue["yunet-2023mar"],
            intra_op_threads=1,
            input_size=None if size == REFERENCE_SIZE else size,
        )
        runner.load()
        detector = FaceDetector(runner)
        detector.input_size = size
        found[size] = detector
    return found


def timed_detect(detector: FaceDetector, frame: np.ndarray) -> tuple[list[Face], float]:
    runs = []
    for _ in range(3):
        started = time.process_time()
        faces = detector.detect(frame)
        runs.append(time.process_time() - started)
    return faces, min(runs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="640,480,416,320")
    args = parser.parse_args()
    sizes = [REFERENCE_SIZE] + [int(s) for s in args.sizes.split(",") if int(s) != REFERENCE_SIZE]
    found = detectors(sizes)
    sface = OnnxRunner(load_catalogue()["sface-2021dec"], intra_op_threads=1)
    sface.load()
    embedder = FaceEmbedder(sface)
    columns = {size: Column() for size in sizes}
    photos = sorted(PHOTOS.glob("*.jpg"))
    for path in photos:
        frame = sdk_frame(path)
        reference: tuple[Face, np.ndarray, int] | None = None
        for size in sizes:
            faces, cpu_ms = timed_detect(found[size], frame)
            column = columns[size]
            column.cpu_ms.append(cpu_ms)
            if not faces:
                column.no_face += 1
                continue
            probe = embedder.embed([embedder.align(frame, faces[0].landmarks)])[0]
            if size == REFERENCE_SIZE:
                reference = (faces[0], probe, len(faces))
                continue
            if reference is None:
                continue
            face, reference_probe, count = reference
            shift = float(np.abs(faces[0].landmarks - face.landmarks).max())
            column.landmark_shift_pct.append(100 * shift / max(face.box[2], 1.0))
            column.cosine.append(float(probe @ reference_probe))
            column.other_count += len(faces) != count
    print(f"{len(photos)} photos, long side {FRAME_LONG_SIDE} px, ONNX Runtime on 1 thread")
    print(
        "| input | CPU ms (median) | landmark shift, % of face width (median / max) "
        "| probe cosine to 640's (median / min) | no face | other face count |"
    )
    print("|---:|---:|---|---|---:|---:|")
    for size, column in columns.items():
        shift_cell = cosine_cell = "(reference)"
        if column.cosine:
            shift_cell = (
                f"{statistics.median(column.landmark_shift_pct):.2f} / "
                f"{max(column.landmark_shift_pct):.2f}"
            )
            cosine_cell = f"{statistics.median(column.cosine):.4f} / {min(column.cosine):.4f}"
        print(
            f"| {size} | {statistics.median(column.cpu_ms):.1f} | {shift_cell} | {cosine_cell} "
            f"| {column.no_face} | {column.other_count} |"
        )


if __name__ == "__main__":
    main()
