"""Face Match on degraded document portraits: FNMR and FMR at the shipped threshold.

    .venv/bin/python tools/bench/face_match_degradation.py [--out bench-results]

The labelled pairs of tests/data/faces/master.csv (38 genuine, 262 impostor):
the first photo of a pair is the selfie (clean), the second is the reference,
degraded as an old or printed document portrait would be:

  clean          as is
  eyes-60/45/30  downscaled so the eyes are 60, 45 or 30 px apart
  jpeg-q30       JPEG quality 30
  blur           Gaussian blur, sigma 2.5
  halftone       print simulation: 45-degree halftone screen (5 px cells) on
                 each channel, downscaled to 45 px between the eyes
  colour-cast    warm cast (R x1.25, B x0.75) and lowered contrast

Each reference goes through the service's own matcher (largest face,
upsampling below 60 px between the eyes, quality reasons, REVIEW band).
FNMR = genuine pairs not decided MATCH (REVIEW and failures count as not
matched) and, separately, genuine pairs under the threshold (similarity
alone); FMR = impostor pairs at or over the threshold. Not a test: nothing
asserts a figure. Prints a Markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from identity_inference.pack import InferenceSettings  # noqa: E402
from services.face_match.bootstrap import build_matcher  # noqa: E402
from services.face_match.matcher import FaceMatcher, ImageRejected, eye_distance  # noqa: E402
from services.face_match.settings import FaceMatchSettings  # noqa: E402

FACES = ROOT / "tests" / "data" / "faces"


def photo(name: str) -> np.ndarray:
    image = cv2.imread(str(FACES / name))
    assert image is not None, name
    return image


def encode(image: np.ndarray, quality: int = 95) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def to_eyes(matcher: FaceMatcher, pixels: int) -> Callable[[np.ndarray], np.ndarray]:
    def degrade(image: np.ndarray) -> np.ndarray:
        faces = matcher.detector.detect(image)
        if not faces:
            return image
        distance = eye_distance(max(faces, key=lambda f: f.area))
        scale = min(1.0, pixels / max(distance, 1.0))
        return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)

    return degrade


def halftone(image: np.ndarray, cell: int = 5) -> np.ndarray:
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # A 45-degree dot screen: threshold each channel against a periodic pattern.
    u, v = (xx + yy) / np.sqrt(2), (xx - yy) / np.sqrt(2)
    screen = (np.cos(2 * np.pi * u / cell) * np.cos(2 * np.pi * v / cell) + 1) / 2
    out = np.where(image.astype(np.float32) / 255.0 > screen[..., None], 255, 0).astype(np.uint8)
    return cv2.GaussianBlur(out, (0, 0), cell / 3)


def colour_cast(image: np.ndarray) -> np.ndarray:
    out = image.astype(np.float32)
    out = (out - 128) * 0.8 + 128
    out[..., 2] *= 1.25
    out[..., 0] *= 0.75
    return np.clip(out, 0, 255).astype(np.uint8)


def conditions(matcher: FaceMatcher) -> dict[str, Callable[[np.ndarray], bytes]]:
    return {
        "clean": lambda im: encode(im),
        "eyes-60": lambda im: encode(to_eyes(matcher, 60)(im)),
        "eyes-45": lambda im: encode(to_eyes(matcher, 45)(im)),
        "eyes-30": lambda im: encode(to_eyes(matcher, 30)(im)),
        "jpeg-q30": lambda im: encode(im, 30),
        "blur": lambda im: encode(cv2.GaussianBlur(im, (0, 0), 2.5)),
        "halftone": lambda im: encode(to_eyes(matcher, 45)(halftone(im))),
        "colour-cast": lambda im: encode(colour_cast(im)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    parser.add_argument("--only", nargs="*", help="conditions to run (default: all)")
    args = parser.parse_args()
    settings = FaceMatchSettings(
        database_url="sqlite://",
        upload_signing_key="x" * 32,
        callback_signing_key="x" * 32,
        oauth_client_pepper="x" * 32,
        oauth_signing_keys="{}",
        intra_op_threads=1,
    )
    assert isinstance(settings, InferenceSettings)
    matcher = build_matcher(settings)
    with (FACES / "master.csv").open() as handle:
        pairs = [(r["file_x"], r["file_y"], r["Decision"] == "Yes") for r in csv.DictReader(handle)]
    photos = {name: photo(name) for pair in pairs for name in pair[:2]}
    selfies = {name: encode(image) for name, image in photos.items()}
    rows = []
    chosen = conditions(matcher)
    for name, degrade in chosen.items():
        if args.only and name not in args.only:
            continue
        started = time.perf_counter()
        references = {n: degrade(photos[n]) for n in {p[1] for p in pairs}}
        genuine = [0, 0, 0, 0]  # pairs, not MATCH, under threshold, REVIEW
        impostor = [0, 0, 0]  # pairs, at/over threshold, decided MATCH
        failures = 0
        for selfie, reference, same in pairs:
            try:
                result = matcher.match(selfies[selfie], references[reference])
                similarity, decision = result["similarity"], result["decision"]
            except ImageRejected:
                failures += 1
                similarity, decision = -1.0, "FAILED"
            if same:
                genuine[0] += 1
                genuine[1] += decision != "MATCH"
                genuine[2] += similarity < matcher.threshold
                genuine[3] += decision == "REVIEW"
            else:
                impostor[0] += 1
                impostor[1] += similarity >= matcher.threshold
                impostor[2] += decision == "MATCH"
        rows.append(
            {
                "condition": name,
                "genuine": genuine[0],
                "impostor": impostor[0],
                "fnmr_decision": genuine[1] / genuine[0],
                "fnmr_threshold": genuine[2] / genuine[0],
                "review_rate_genuine": genuine[3] / genuine[0],
                "fmr_threshold": impostor[1] / impostor[0],
                "fmr_decision": impostor[2] / impostor[0],
                "failures": failures,
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    print(
        f"\nthreshold {matcher.threshold} (sface-2021dec verification), review margin "
        f"{matcher.review_margin}\n"
    )
    print(
        "| reference degraded | FNMR (not MATCH) | FNMR (similarity < thr) | genuine in REVIEW "
        "| FMR (similarity >= thr) | FMR (MATCH) | no face / failed |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['condition']} | {r['fnmr_decision']:.1%} | {r['fnmr_threshold']:.1%} | "
            f"{r['review_rate_genuine']:.1%} | {r['fmr_threshold']:.2%} | {r['fmr_decision']:.2%} "
            f"| {r['failures']} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "face_match_degradation.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
