"""capture-quality's CPU per AssessFace call, and its decisions, in two checkouts side by side.

    .venv/bin/python tools/bench/assess_cpu.py --baseline /work/main [--rounds 5]

One worker process per checkout (this one and `--baseline`), each running its
own checkout's `FaceAssessor` with its own virtualenv (`<checkout>/.venv`),
ONNX Runtime on one thread, OpenCV's threads as the service leaves them.
Both get the same frames.

Captures: every photo under tests/data/faces and tests/data/spoof, as it is
and framed like a front-camera selfie, each as a baseline frame plus four
flash frames lit by a random sequence (a surface) and replayed on a screen:
the decision table of tools/bench/detect_once.py (260 captures).

Parity, on every capture, in three calls:
- "step-up": what kyc-tier sends (crops, crop_frame_index 0,
  measure_crop_frame_only);
- "every frame": the same without measure_crop_frame_only (each flash
  frame's own measures too);
- "reference": the baseline frame alone, kind REFERENCE (a KTP portrait or
  partner photo: the whole-frame resolution test when no face is found).
Compared exactly: pass/fail, reason codes, best frame, per frame the faces
found (boxes, landmarks, scores), each measure's pass/fail and reason, the
crops' bytes (the PAD inputs), the flash verdict (services.liveness.flash on
the face colours) and the PAD verdict and score. Measured values and face
colours: the largest difference, by measure, is printed (the tolerance),
with, for each that differs, the value nearest a bound of its accepted range
on either side (a difference smaller than that cannot move a verdict here).

Timing: the selfie-framed lit captures (the bench's step-ups), the
"step-up" call, the two workers alternating capture by capture over
`--rounds` rounds; each worker reports `time.process_time` of its own call.
Medians and the ratio; JSON to bench-results/. Nothing asserts a time.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and "--worker" in sys.argv:
    # A worker imports the checkout it measures, not the one this file is in.
    sys.path.insert(0, sys.argv[sys.argv.index("--worker") + 1])
else:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import IO, TYPE_CHECKING, Any  # noqa: E402

if TYPE_CHECKING:
    from identity_inference.detector import FaceDetector
    from identity_inference.pad import CropSpec, PadScorer

ROOT = Path(__file__).resolve().parents[2]
FLASH_MS = 400
CALLS: dict[str, dict[str, Any]] = {
    "step-up": {"include_crops": True, "crop_frame_index": 0, "measure_crop_frame_only": True},
    "every frame": {"include_crops": True, "crop_frame_index": 0},
    "reference": {"include_crops": True, "kind": "reference"},
}


def build_captures() -> list[dict[str, Any]]:
    """The decision table's captures: name, frames (JPEG), flash sequence, timed."""
    import cv2

    from services.liveness import flash
    from tests.support import TESTDATA
    from tests.support.biometrics import jpeg, screen_flash_frames, tint
    from tools.bench.step_up import selfie_crop

    detector = face_models(threads=1)[0]
    photos = sorted((TESTDATA / "faces").glob("*.jpg")) + sorted((TESTDATA / "spoof").glob("*.jpg"))
    rng = random.Random(15)
    table = []
    for path in photos:
        image = cv2.imread(str(path))
        assert image is not None, path
        faces = detector.detect(image)
        framed = selfie_crop(image, faces[0].box) if faces else None
        for label, picture in (("as is", image), ("selfie", framed)):
            if picture is None:
                continue
            sequence = rng.sample(list(flash.PALETTE), 4)
            base = jpeg(picture)
            name = f"{path.parent.name}/{path.name} {label}"
            lit = [base, *(jpeg(tint(picture, c)) for c in sequence)]
            screen = [base, *screen_flash_frames(picture, sequence)]
            table.append(
                {
                    "name": f"{name} lit",
                    "frames": lit,
                    "sequence": sequence,
                    "timed": label == "selfie",
                }
            )
            table.append(
                {"name": f"{name} screen", "frames": screen, "sequence": sequence, "timed": False}
            )
    return table


def face_models(threads: int) -> tuple[FaceDetector, PadScorer, list[CropSpec]]:
    """capture-quality's face detector (whole frame and region of interest), the
    fused MiniFASNet PAD and its crop specs, ONNX Runtime on `threads` threads.

    Every import is inside, so that a worker builds them from the checkout it
    measures, never from this file's; detect_once.py loads its models here too."""
    from identity_inference.detector import ROI_INPUT_SIZE, FaceDetector
    from identity_inference.manifest import PACKAGED_PAD_DIR, load_catalogue
    from identity_inference.pad import PadScorer, crop_spec
    from identity_inference.runners import OnnxRunner

    catalogue = load_catalogue()

    def runner(model_id: str, **kw: Any) -> OnnxRunner:
        loaded = OnnxRunner(catalogue[model_id], intra_op_threads=threads, **kw)
        loaded.load()
        return loaded

    pad = PadScorer(
        [
            runner("minifasnet-v2", pad_dir=PACKAGED_PAD_DIR),
            runner("minifasnet-v1se", pad_dir=PACKAGED_PAD_DIR),
        ]
    )
    detector = FaceDetector(
        runner("yunet-2023mar"), runner("yunet-2023mar", input_size=ROI_INPUT_SIZE)
    )
    return detector, pad, [crop_spec(r.manifest) for r in pad.runners]


def _assessor() -> tuple[Any, Any]:
    from identity_inference import images
    from services.capture_quality.faces import FaceAssessor

    detector, pad, specs = face_models(threads=1)
    return FaceAssessor(detector, specs, images.ImageLimits()), pad


def _digest(result: Any, capture: dict[str, Any], pad: Any) -> dict[str, Any]:
    """What the call decides (compared exactly) and what it measures (compared with tolerance)."""
    from services.liveness import flash

    def sha(array: Any) -> str:
        return hashlib.sha256(array.tobytes()).hexdigest()[:16]

    frames = []
    for r in result.frames:
        frames.append(
            {
                "faces": [(f.box, f.landmarks.tolist(), f.score, f.predicted_box) for f in r.faces],
                "checks": [(m.name, m.passed, m.reason_code, m.threshold) for m in r.measures],
                "measured": r.measured,
            }
        )
    decided: dict[str, Any] = {
        "passed": result.passed,
        "reasons": [code for code, _ in result.reasons],
        "best_index": result.best_index,
        "frames": frames,
        "crops": None,
        "pad": None,
    }
    if result.crops is not None:
        decided["crops"] = [sha(result.crops.aligned), *(sha(c.image) for c in result.crops.pad)]
        scored = pad.score({c.scale: c.image for c in result.crops.pad})
        decided["pad"] = (scored.live, scored.fused_live_score)
    if len(result.frames) > 1:
        colours = [
            flash.FrameColour((r.index - 1) * FLASH_MS, r.colour.face_bgr, bool(r.faces))
            for r in result.frames[1:]
        ]
        verdict = flash.verify(capture["sequence"], FLASH_MS, colours)
        decided["flash"] = (verdict.passed, [code for code, _ in verdict.reasons])
    measured = {
        "values": [[(m.name, m.value) for m in r.measures] for r in result.frames],
        "colours": [(r.colour.face_bgr, r.colour.background_bgr) for r in result.frames],
        "limits": [(m.name, m.value, m.threshold) for r in result.frames for m in r.measures],
    }
    return {"decided": decided, "measured": measured}


def worker(captures_path: str) -> None:
    """Answer the parent's requests (one JSON line each) on this checkout's assessor."""
    from services.capture_quality.faces import REFERENCE, SELFIE

    with open(captures_path, "rb") as handle:
        table = pickle.load(handle)
    assessor, pad = _assessor()
    kinds = {"selfie": SELFIE, "reference": REFERENCE}
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing else may write to the answer channel
    for line in sys.stdin:
        request = json.loads(line)
        capture = table[request["capture"]]
        kwargs = dict(CALLS[request["call"]])
        kind = kinds[kwargs.pop("kind", "selfie")]
        frames = capture["frames"][:1] if kind == REFERENCE else capture["frames"]
        started = time.process_time()
        result = assessor.assess(frames, kind, **kwargs)
        cpu_ms = (time.process_time() - started) * 1000
        answer: dict[str, Any] = {"cpu_ms": cpu_ms}
        if request.get("digest"):
            answer["digest"] = _digest(result, capture, pad)
        out.write(json.dumps(answer) + "\n")
        out.flush()


class Worker:
    def __init__(self, checkout: Path, captures_path: str):
        self.checkout = checkout
        self.process = subprocess.Popen(
            [
                str(checkout / ".venv/bin/python"),
                __file__,
                "--worker",
                str(checkout),
                captures_path,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=checkout,
        )

    def ask(self, capture: int, call: str, digest: bool = False) -> dict[str, Any]:
        stdin: IO[str] = self.process.stdin  # type: ignore[assignment]
        stdout: IO[str] = self.process.stdout  # type: ignore[assignment]
        stdin.write(json.dumps({"capture": capture, "call": call, "digest": digest}) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise SystemExit(f"the worker of {self.checkout} ended")
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def _differences(old: Any, new: Any, path: str, into: dict[str, float]) -> None:
    """The largest absolute difference of each named number between two digests' measures."""
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        into[path] = max(into.get(path, 0.0), abs(float(old) - float(new)))
    elif isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        if len(old) == 2 and isinstance(old[0], str) and old[0] == new[0]:
            _differences(old[1], new[1], old[0], into)
        else:
            for a, b in zip(old, new, strict=True):
                _differences(a, b, path, into)


def _margins(limits: list[tuple[str, float, str]], into: dict[str, float]) -> None:
    """The smallest distance of each measure's value to a bound of its accepted range."""
    for name, value, threshold in limits:
        bounds = [float(b) for b in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", threshold)]
        if bounds:
            nearest = min(abs(value - b) for b in bounds)
            into[name] = min(into.get(name, float("inf")), nearest)


def parity(before: Worker, after: Worker, table: list[dict[str, Any]]) -> dict[str, Any]:
    changes: list[dict[str, Any]] = []
    tolerance: dict[str, float] = {}
    margins: dict[str, float] = {}
    counts = {call: 0 for call in CALLS}
    for index, capture in enumerate(table):
        for call in CALLS:
            if call == "reference" and not capture["name"].endswith("lit"):
                continue  # the same baseline frame as the lit capture
            old = before.ask(index, call, digest=True)["digest"]
            new = after.ask(index, call, digest=True)["digest"]
            counts[call] += 1
            if json.dumps(old["decided"]) != json.dumps(new["decided"]):
                what = [k for k in old["decided"] if old["decided"][k] != new["decided"][k]]
                changes.append({"capture": capture["name"], "call": call, "what": what})
            _differences(old["measured"]["values"], new["measured"]["values"], "", tolerance)
            _differences(
                old["measured"]["colours"], new["measured"]["colours"], "colour", tolerance
            )
            _margins(old["measured"]["limits"] + new["measured"]["limits"], margins)
    return {
        "calls": counts,
        "changes": changes,
        "max_abs_difference": tolerance,
        "nearest_to_a_bound": margins,
    }


def timing(
    before: Worker, after: Worker, table: list[dict[str, Any]], rounds: int
) -> dict[str, Any]:
    from tools.bench.common import alternating

    timed = [i for i, c in enumerate(table) if c["timed"]]
    samples: dict[str, list[float]] = {"before": [], "after": []}
    for index, order in alternating(rounds, timed, [("before", before), ("after", after)]):
        for name, side in order:
            samples[name].append(side.ask(index, "step-up")["cpu_ms"])
    median = {k: statistics.median(v) for k, v in samples.items()}
    return {
        "captures": len(timed),
        "rounds": rounds,
        "median_cpu_ms": median,
        "p90_cpu_ms": {k: statistics.quantiles(v, n=10)[-1] for k, v in samples.items()},
        "after_over_before": median["after"] / median["before"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the checkout before")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-parity", action="store_true", help="time only")
    args = parser.parse_args()
    table = build_captures()
    with tempfile.NamedTemporaryFile(suffix=".pickle") as handle:
        pickle.dump(table, handle)
        handle.flush()
        before, after = Worker(args.baseline.resolve(), handle.name), Worker(ROOT, handle.name)
        try:
            # Warm both (sessions, first-call allocations) before anything is compared.
            for side in (before, after):
                side.ask(0, "step-up")
            checked = None if args.no_parity else parity(before, after, table)
            timed = timing(before, after, table, args.rounds)
        finally:
            before.close()
            after.close()
    report = [f"captures: {len(table)}; timed: {timed['captures']} x {timed['rounds']} rounds"]
    if checked is not None:
        report += [
            f"parity calls: {checked['calls']}",
            f"decision changes: {len(checked['changes'])}",
            *(f"  {c['capture']} ({c['call']}): {c['what']}" for c in checked["changes"]),
            "largest |difference| of measured values: "
            + ", ".join(f"{k} {v:.3g}" for k, v in sorted(checked["max_abs_difference"].items())),
            "of those that differ, the value nearest a bound of its accepted range: "
            + ", ".join(
                f"{k} {checked['nearest_to_a_bound'][k]:.3g} from it"
                for k, v in sorted(checked["max_abs_difference"].items())
                if v > 0 and k in checked["nearest_to_a_bound"]
            ),
        ]
    med = timed["median_cpu_ms"]
    report.append(
        f"AssessFace (step-up call) CPU median: before {med['before']:.1f} ms, "
        f"after {med['after']:.1f} ms, ratio {timed['after_over_before']:.2f}"
    )
    from tools.bench.common import publish

    publish(
        ROOT / "bench-results" / "assess_cpu.json", {"parity": checked, "timing": timed}, report
    )


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker(sys.argv[sys.argv.index("--worker") + 2])
    else:
        main()
