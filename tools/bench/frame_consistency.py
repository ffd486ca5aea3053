"""How well does a check tie the flash frames' face to the baseline's?

The black-box probe's step-up showed one person on the unflashed baseline
(PAD and matching judge it) and another on the flash frames (they answer the
flash). Nothing compares the faces across frames. This measures the cheapest
comparison capture-quality could make without a model: the Pearson
correlation of the two faces' grey, landmark-aligned 112x112 crops (the
centre, mostly inside the face), which a flash's colour cast barely moves.

It also measures what step-up now does (the `embedding` columns): SFace's
cosine between the baseline's and one flash frame's aligned colour crops,
refused under the verification threshold the organisation's match uses.

It compares three kinds of pairs from tests/data/faces (selfie-framed):

- genuine: a photo against itself tinted by a flash colour (15 %), turned
  by up to 4 degrees, scaled by up to 5 % and moved by up to 12 px, as
  JPEG 85 (a person moving during the 1.6 s of flashes);
- same person, another photo (master.csv "Yes");
- different people (master.csv "No"): the swap the probe made.

It prints each kind's distribution and, per threshold, how many genuine
pairs a check would refuse and how many swaps it would catch.

    .venv/bin/python tools/bench/frame_consistency.py --seed 1
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from identity_inference.align import align_face  # noqa: E402
from identity_inference.detector import Face, FaceDetector  # noqa: E402
from identity_inference.embedder import FaceEmbedder  # noqa: E402
from identity_inference.manifest import load_catalogue  # noqa: E402
from identity_inference.runners import OnnxRunner  # noqa: E402
from tests.support.biometrics import jpeg, tint  # noqa: E402
from tools.bench.step_up import selfie_crop  # noqa: E402

FACES = Path(__file__).resolve().parents[2] / "tests" / "data" / "faces"
FLASH = ("#FF0000", "#00FF00", "#0000FF", "#FFFF00", "#FF00FF", "#00FFFF")
THRESHOLDS = (0.4, 0.45, 0.5, 0.55, 0.6)
COSINES = (0.363, 0.4, 0.48, 0.55)


def grey(aligned: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY).astype(np.float32)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the crops' centres (insensitive to gain and offset)."""
    x, y = a[16:104, 16:96].ravel(), b[16:104, 16:96].ravel()
    x, y = x - x.mean(), y - y.mean()
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-9))


def moved(image: np.ndarray, rng: random.Random) -> np.ndarray:
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(
        (width / 2, height / 2), rng.uniform(-4, 4), rng.uniform(0.95, 1.05)
    )
    matrix[:, 2] += np.array([rng.uniform(-12, 12), rng.uniform(-12, 12)])
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    runner = OnnxRunner(load_catalogue()["yunet-2023mar"], intra_op_threads=1)
    runner.load()
    detector = FaceDetector(runner)
    selfies: dict[str, tuple[np.ndarray, Face]] = {}
    for path in sorted(FACES.glob("*.jpg")):
        image = cv2.imread(str(path))
        assert image is not None, path
        found = detector.detect(image)
        if not found:
            continue
        framed = selfie_crop(image, found[0].box)
        faces = detector.detect(framed)
        if faces:
            selfies[path.name] = (framed, faces[0])
    embedder = FaceEmbedder(OnnxRunner(load_catalogue()["sface-2021dec"], intra_op_threads=1))
    embedder.runner.load()
    kinds: dict[str, list[float]] = {"genuine": [], "same person": [], "different people": []}
    cosines: dict[str, list[float]] = {kind: [] for kind in kinds}

    def compare(kind: str, a: tuple[np.ndarray, Face], b: tuple[np.ndarray, Face]) -> None:
        crops = [align_face(image, face.landmarks) for image, face in (a, b)]
        kinds[kind].append(correlation(grey(crops[0]), grey(crops[1])))
        first, second = embedder.embed(crops)
        cosines[kind].append(float(first @ second))

    for image, face in selfies.values():
        for colour in rng.sample(FLASH, 3):
            lit = cv2.imdecode(
                np.frombuffer(jpeg(moved(tint(image, colour), rng), 85), np.uint8),
                cv2.IMREAD_COLOR,
            )
            assert lit is not None
            found = detector.detect(lit)
            if found:
                compare("genuine", (image, face), (lit, found[0]))
    with (FACES / "master.csv").open() as listed:
        for row in csv.DictReader(listed):
            a, b = selfies.get(row["file_x"]), selfies.get(row["file_y"])
            if a is None or b is None:
                continue
            kind = "same person" if row["Decision"] == "Yes" else "different people"
            compare(kind, a, b)
    report("grey correlation", kinds, THRESHOLDS)
    report("embedding (SFace cosine)", cosines, COSINES)


def report(measure: str, kinds: dict[str, list[float]], thresholds: tuple[float, ...]) -> None:
    print(f"### {measure}")
    print()
    print("| pairs | n | min | 5th percentile | median | max |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, values in kinds.items():
        ordered = sorted(values)
        print(
            f"| {kind} | {len(ordered)} | {ordered[0]:.3f} | {ordered[len(ordered) // 20]:.3f} "
            f"| {statistics.median(ordered):.3f} | {ordered[-1]:.3f} |"
        )
    print()
    print("| threshold | genuine refused | swaps caught | same person, other photo, below |")
    print("|---:|---:|---:|---:|")
    for threshold in thresholds:
        below = {kind: sum(v < threshold for v in values) for kind, values in kinds.items()}
        print(
            f"| {threshold} | {below['genuine']}/{len(kinds['genuine'])} "
            f"| {below['different people']}/{len(kinds['different people'])} "
            f"| {below['same person']}/{len(kinds['same person'])} |"
        )
    print()


if __name__ == "__main__":
    main()
