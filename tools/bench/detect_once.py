"""Detect once (issue 15): AssessFace on 5-frame flash captures, every frame
detected (before) vs the baseline detected and the flash frames re-detected
near its face (after), and the decisions of both.

    .venv/bin/python tools/bench/detect_once.py [--rounds 5] [--threads 1] [--graph-only]

Captures: every photo under tests/data/faces and tests/data/spoof, (a) as it
is and (b) framed like a front-camera selfie (the face ~1/1.8 of a 640 px
frame, as tools/bench/step_up.py frames its probes); each as a baseline frame
plus four flash frames lit by a random sequence (tests.support.biometrics.
tint: a surface lit by the screen) and, for the decision table, the same
photo replayed on a screen (screen_flash_frames: the flash barely reflects).

Parity: for each capture both paths are run and compared: the quality
verdict and reasons, the PAD verdict on the baseline crops (MiniFASNet
fused), the flash verdict (services.liveness.flash.verify on the per-frame
face colours and face_found), per-frame faces found, the primary box IoU and
the largest face-colour difference. Prints every decision that differs.

Timing: the two paths alternate capture by capture over `--rounds` rounds on
the selfie-framed captures (same frames, same process); medians and the
ratio; `--graph-only` times the detector graph alone at 640 and at the
region size, interleaved. Writes JSON to bench-results/. Nothing asserts a
time.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from identity_inference import images  # noqa: E402
from identity_inference.detector import ROI_INPUT_SIZE, FaceDetector  # noqa: E402
from identity_inference.pad import PadScorer  # noqa: E402
from identity_inference.runners import Runner  # noqa: E402
from services.capture_quality.faces import FaceAssessment, FaceAssessor  # noqa: E402
from services.liveness import flash  # noqa: E402
from tests.support import TESTDATA  # noqa: E402
from tests.support.biometrics import jpeg, screen_flash_frames, tint  # noqa: E402
from tools.bench.assess_cpu import face_models  # noqa: E402
from tools.bench.common import alternating, publish  # noqa: E402
from tools.bench.step_up import selfie_crop  # noqa: E402

FLASH_MS = 400
PHOTOS = sorted((TESTDATA / "faces").glob("*.jpg")) + sorted((TESTDATA / "spoof").glob("*.jpg"))


@dataclass
class Capture:
    name: str
    frames: list[bytes]
    sequence: list[str]


def load(threads: int) -> tuple[FaceAssessor, FaceAssessor, PadScorer]:
    detector, pad, specs = face_models(threads)
    limits = images.ImageLimits()
    before = FaceAssessor(detector, specs, limits, detect_once=False)
    after = FaceAssessor(detector, specs, limits, detect_once=True)
    return before, after, pad


def selfie(image: np.ndarray, detector: FaceDetector) -> np.ndarray | None:
    faces = detector.detect(image)
    return selfie_crop(image, faces[0].box) if faces else None


def captures(detector: FaceDetector) -> tuple[list[Capture], list[Capture]]:
    """(every capture of the decision table, the selfie-framed live ones for timing)."""
    rng = random.Random(15)
    table, timed = [], []
    for path in PHOTOS:
        image = cv2.imread(str(path))
        assert image is not None, path
        framed = selfie(image, detector)
        for label, picture in (("as is", image), ("selfie", framed)):
            if picture is None:
                continue
            sequence = rng.sample(list(flash.PALETTE), 4)
            base = jpeg(picture)
            live = Capture(
                f"{path.parent.name}/{path.name} {label} lit",
                [base, *(jpeg(tint(picture, c)) for c in sequence)],
                sequence,
            )
            replay = Capture(
                f"{path.parent.name}/{path.name} {label} screen",
                [base, *screen_flash_frames(picture, sequence)],
                sequence,
            )
            table += [live, replay]
            if label == "selfie":
                timed.append(live)
    return table, timed


def flash_verdict(result: FaceAssessment, capture: Capture) -> tuple[bool, tuple[str, ...]]:
    frames = [
        flash.FrameColour(
            offset_ms=(r.index - 1) * FLASH_MS,
            face_bgr=r.colour.face_bgr,
            face_found=bool(r.faces),
        )
        for r in result.frames
        if r.index != 0
    ]
    verdict = flash.verify(capture.sequence, FLASH_MS, frames)
    return verdict.passed, tuple(code for code, _ in verdict.reasons)


def pad_verdict(result: FaceAssessment, pad: PadScorer) -> tuple[bool, float] | None:
    if result.crops is None:
        return None
    scored = pad.score({c.scale: c.image for c in result.crops.pad})
    return scored.live, round(scored.fused_live_score, 4)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    h = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def decisions(result: FaceAssessment, capture: Capture, pad: PadScorer) -> dict:
    return {
        "quality": (result.passed, tuple(code for code, _ in result.reasons)),
        "pad": pad_verdict(result, pad),
        "flash": flash_verdict(result, capture),
    }


def frame_reasons(result: FaceAssessment) -> tuple[tuple[str, ...], ...]:
    """Each flash frame's failing reason codes (reported per frame, not decided on)."""
    return tuple(
        tuple(sorted({m.reason_code for m in r.measures if not m.passed}))
        for r in result.frames[1:]
    )


def parity(before: FaceAssessor, after: FaceAssessor, pad: PadScorer, table: list[Capture]) -> dict:
    rows: list[dict[str, Any]] = []
    changes, ious, colour_diffs = [], [], []
    frame_changes: list[dict] = []
    for capture in table:
        old = before.assess(capture.frames, include_crops=True, crop_frame_index=0)
        new = after.assess(capture.frames, include_crops=True, crop_frame_index=0)
        d_old, d_new = decisions(old, capture, pad), decisions(new, capture, pad)
        f_old, f_new = frame_reasons(old), frame_reasons(new)
        if f_old != f_new:
            frame_changes.append({"capture": capture.name, "before": f_old, "after": f_new})
        anchor = old.frames[0].faces[0].box if old.frames[0].faces else None
        for r_old, r_new in zip(old.frames[1:], new.frames[1:], strict=True):
            # The same face (a background detection can be the largest before).
            if anchor and r_old.faces and r_new.faces and iou(r_old.faces[0].box, anchor) > 0.5:
                ious.append(iou(r_old.faces[0].box, r_new.faces[0].box))
                colour_diffs.append(
                    float(np.abs(np.subtract(r_old.colour.face_bgr, r_new.colour.face_bgr)).max())
                )
        differing = [k for k in d_old if d_old[k] != d_new[k]]
        rows.append({"capture": capture.name, "before": d_old, "after": d_new})
        if differing:
            changes.append(
                {"capture": capture.name, "what": differing, "before": d_old, "after": d_new}
            )
    return {
        "captures": len(table),
        "changes": changes,
        "flash_frame_reason_changes": frame_changes,
        "box_iou_min": min(ious) if ious else None,
        "box_iou_median": statistics.median(ious) if ious else None,
        "box_iou_p05": float(np.percentile(ious, 5)) if ious else None,
        "face_colour_max_abs_diff": max(colour_diffs) if colour_diffs else None,
        "counts": {
            side: {
                "quality_pass": sum(bool(r[side]["quality"][0]) for r in rows),
                "pad_live": sum(bool(r[side]["pad"] and r[side]["pad"][0]) for r in rows),
                "flash_pass": sum(bool(r[side]["flash"][0]) for r in rows),
                "flash_pass_lit": sum(
                    bool(r[side]["flash"][0]) for r in rows if r["capture"].endswith("lit")
                ),
                "flash_pass_screen": sum(
                    bool(r[side]["flash"][0]) for r in rows if r["capture"].endswith("screen")
                ),
            }
            for side in ("before", "after")
        },
    }


def timing(before: FaceAssessor, after: FaceAssessor, timed: list[Capture], rounds: int) -> dict:
    samples: dict[str, list[float]] = {"before": [], "after": []}
    for capture, order in alternating(rounds, timed, [("before", before), ("after", after)]):
        for name, assessor in order:
            started = time.perf_counter()
            assessor.assess(capture.frames, include_crops=True, crop_frame_index=0)
            samples[name].append(time.perf_counter() - started)
    med = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    return {
        "captures": len(timed),
        "rounds": rounds,
        "median_ms": med,
        "p90_ms": {k: statistics.quantiles(v, n=10)[-1] * 1000 for k, v in samples.items()},
        "ratio_after_over_before": med["after"] / med["before"],
    }


def graph(detector: FaceDetector, calls: int = 25) -> dict[str, float]:
    """The YuNet graph alone at 640 and at the region size, interleaved: median ms."""
    assert detector.roi_runner is not None
    rng = np.random.default_rng(15)
    samples: dict[str, list[float]] = {"640": [], str(ROI_INPUT_SIZE): []}
    for _ in range(calls):
        for key, runner in (("640", detector.runner), (str(ROI_INPUT_SIZE), detector.roi_runner)):
            size = int(key)
            blob = rng.uniform(0, 255, (1, 3, size, size)).astype(np.float32)
            started = time.perf_counter()
            runner.infer(blob)
            samples[key].append(time.perf_counter() - started)
    return {k: statistics.median(v) * 1000 for k, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--graph-only", action="store_true", help="time the detector graph at both sizes only"
    )
    args = parser.parse_args()
    before, after, pad = load(args.threads)
    if args.graph_only:
        print(f"YuNet graph, median ms: {graph(before.detector)}")
        return
    table, timed = captures(before.detector)
    calls = _count_calls(after, timed[0])
    checked = parity(before, after, pad, table)
    timed_result = timing(before, after, timed, args.rounds)
    med = timed_result["median_ms"]
    report = [
        f"captures: {checked['captures']} (decision table), {len(timed)} selfie-framed timed",
        f"detector calls on one capture after: {calls}",
        *(f"{side:>6}: {checked['counts'][side]}" for side in ("before", "after")),
        f"flash frames, same face: primary box IoU min {checked['box_iou_min']:.3f} "
        f"p05 {checked['box_iou_p05']:.3f} median {checked['box_iou_median']:.3f}; "
        f"face colour max |diff| {checked['face_colour_max_abs_diff']:.2f}",
        f"decision changes (quality, PAD, flash): {len(checked['changes'])}",
        *(
            f"  {c['capture']}: {c['what']}: {c['before']} -> {c['after']}"
            for c in checked["changes"]
        ),
        f"flash frames' own failing reasons changed: {len(checked['flash_frame_reason_changes'])}",
        *(
            f"  {c['capture']}: {c['before']} -> {c['after']}"
            for c in checked["flash_frame_reason_changes"]
        ),
        f"AssessFace, 5 frames, median: before {med['before']:.1f} ms, "
        f"after {med['after']:.1f} ms, ratio {timed_result['ratio_after_over_before']:.2f}",
    ]
    publish(
        ROOT / "bench-results" / "detect_once.json",
        {"parity": checked, "timing": timed_result, "calls": calls},
        report,
    )


def _count_calls(assessor: FaceAssessor, capture: Capture) -> dict[str, int]:
    detector = assessor.detector
    counts = {"full": 0, "roi": 0}
    full, roi = detector.runner, detector.roi_runner
    assert roi is not None

    class Counting:
        def __init__(self, inner: Runner, key: str):
            self.inner, self.key, self.manifest = inner, key, inner.manifest

        def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
            counts[self.key] += 1
            return self.inner.infer(batch)

    detector.runner, detector.roi_runner = Counting(full, "full"), Counting(roi, "roi")  # type: ignore[assignment]
    try:
        assessor.assess(capture.frames, include_crops=True, crop_frame_index=0)
    finally:
        detector.runner, detector.roi_runner = full, roi
    return counts


if __name__ == "__main__":
    main()
