"""`identity eval`: evaluate the face models on labelled data.

    identity eval pairs --pairs faces/master.csv [--pairs more.csv] --images faces/ --out DIR
                        [--write-calibration MANIFEST.json]
    identity eval pad --bona-fide a.jpg b.jpg ... --attack c.jpg ... [--pad-model-dir DIR] --out DIR
    identity eval conditions --images faces/ more.jpg ... [--pairs faces/master.csv] --out DIR

`pairs` reads CSV files with columns file_x, file_y and Decision/decision
(Yes = same person; other columns are ignored; paths are resolved by file
name inside --images), embeds every image once with the configured models,
and writes report.json, det.png and histogram.png: genuine/impostor score
distributions, AUC, EER, FNMR at FMR 1e-2/1e-3/1e-4 and the thresholds.
`--write-calibration` fits the impostor-tail model (see
identity_inference.evaluation) and writes it into the embedding manifest's
`calibration.impostor_scores`. `pad` scores bona fide and attack images with
the PAD models and reports APCER/BPCER at the fused threshold.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from identity_cli.errors import CliError
from identity_inference import evaluation, images
from identity_inference.conditions import ConditionEvaluator
from identity_inference.pair_conditions import pair_report
from identity_inference.pipeline import LIMITS, FacePipeline


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate face models on labelled pairs or PAD samples"
    )
    commands = parser.add_subparsers(dest="eval_command", metavar="KIND", required=True)

    pairs = commands.add_parser(
        "pairs", help="verification: genuine/impostor pairs -> AUC, EER, FNMR@FMR, DET"
    )
    pairs.add_argument(
        "--pairs",
        type=Path,
        action="append",
        required=True,
        help="CSV of labelled pairs (repeatable)",
    )
    pairs.add_argument("--images", type=Path, required=True, help="directory holding the images")
    pairs.add_argument(
        "--out", type=Path, required=True, help="directory for report.json, det.png, histogram.png"
    )
    pairs.add_argument(
        "--model-dir", type=Path, help="operator model directory (manifests + weights)"
    )
    pairs.add_argument("--embedding-model", default="sface-2021dec")
    pairs.add_argument(
        "--write-calibration", type=Path, help="manifest JSON to write the impostor-tail fit into"
    )
    pairs.set_defaults(handler=run_pairs)

    pad = commands.add_parser(
        "pad", help="presentation attacks: bona fide vs attack images -> APCER/BPCER"
    )
    pad.add_argument("--bona-fide", type=Path, nargs="+", required=True)
    pad.add_argument("--attack", type=Path, nargs="+", required=True)
    pad.add_argument(
        "--pad-model-dir",
        type=Path,
        help="another copy of the PAD weights (default: the packaged ones)",
    )
    pad.add_argument("--out", type=Path, required=True)
    pad.set_defaults(handler=run_pad)

    conditions = commands.add_parser(
        "conditions",
        help="by condition: bona-fide PAD by framing, simulated attacks by type "
        "(APCER/BPCER with Wilson CIs), genuine refusals per capture gate",
    )
    conditions.add_argument(
        "--images", type=Path, nargs="+", required=True, help="bona-fide photos or directories"
    )
    conditions.add_argument(
        "--pairs",
        type=Path,
        action="append",
        help="labelled pairs (CSV, repeatable) whose photos are in the first --images "
        "directory: FNMR/FMR by pose bucket and degradation",
    )
    conditions.add_argument(
        "--threshold",
        type=float,
        default=0.48,
        help="match threshold for FNMR/FMR (default: the matching calibration's FMR 1e-4)",
    )
    conditions.add_argument("--out", type=Path, required=True)
    conditions.set_defaults(handler=run_conditions)


def read_pairs(path: Path) -> list[tuple[str, str, bool]]:
    rows = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            decision = row.get("Decision", row.get("decision", "")).strip().lower()
            if decision not in ("yes", "no"):
                raise CliError(f"{path}: a row without a Yes/No decision")
            rows.append((Path(row["file_x"]).name, Path(row["file_y"]).name, decision == "yes"))
    return rows


def unique_pairs(paths: list[Path]) -> dict[tuple[str, ...], bool]:
    """The pairs of every CSV; the same pair listed twice (or in both orders) counts once."""
    unique: dict[tuple[str, ...], bool] = {}
    for x, y, same in (pair for path in paths for pair in read_pairs(path)):
        unique.setdefault(tuple(sorted((x, y))), same)
    return unique


def run_pairs(args: argparse.Namespace) -> int:
    unique = unique_pairs(args.pairs)
    pipeline = FacePipeline.load(
        embedding=args.embedding_model, model_dir=args.model_dir, with_pad=False
    )
    embeddings: dict[str, np.ndarray | None] = {}
    for name in sorted({n for key in unique for n in key}):
        path = args.images / name
        embeddings[name] = pipeline.embed_image(path.read_bytes()) if path.exists() else None
    genuine: list[float] = []
    impostor: list[float] = []
    skipped = 0
    for (x, y), same in unique.items():
        a, b = embeddings[x], embeddings[y]
        if a is None or b is None:
            skipped += 1
            continue
        (genuine if same else impostor).append(float(a @ b))
    report = evaluation.verification_report(genuine, impostor)
    args.out.mkdir(parents=True, exist_ok=True)
    at_1e3 = next(p for p in report.operating_points if p.fmr_target == 1e-3)
    model = pipeline.embedder.manifest
    title = f"{model.id} on {', '.join(p.name for p in args.pairs)}"
    evaluation.plot_det(genuine, impostor, args.out / "det.png", title)
    evaluation.plot_histogram(
        genuine, impostor, args.out / "histogram.png", title, at_1e3.threshold
    )
    result = {
        "model": f"{model.id}@{model.version}",
        "pairs_files": [str(p) for p in args.pairs],
        "pairs": len(unique),
        "skipped_no_face_or_missing": skipped,
        **report.as_dict(),
        "genuine_scores": [round(s, 4) for s in genuine],
        "impostor_scores": [round(s, 4) for s in impostor],
    }
    if args.write_calibration:
        tail = evaluation.fit_impostor_tail(impostor, ", ".join(p.name for p in args.pairs))
        manifest = json.loads(args.write_calibration.read_text())
        manifest.setdefault("calibration", {})["impostor_scores"] = tail
        calibration = manifest["calibration"]
        manifest["calibration"]["thresholds_by_estimated_fmr"] = {
            f"{fmr:g}": round(evaluation.threshold_for_fmr(calibration, fmr), 4)
            for fmr in (1e-3, 1e-4, 1e-5)
        }
        args.write_calibration.write_text(json.dumps(manifest, indent=2) + "\n")
        result["calibration"] = manifest["calibration"]
    (args.out / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    summary = {k: v for k, v in result.items() if not k.endswith("_scores")}
    print(json.dumps(summary, indent=2))
    return 0


def run_pad(args: argparse.Namespace) -> int:
    pipeline = FacePipeline.load(pad_dir=args.pad_model_dir)
    assert pipeline.pad is not None

    def scores(paths: list[Path]) -> tuple[list[float], list[str]]:
        found, missing = [], []
        for path in paths:
            result = pipeline.pad_image(path.read_bytes())
            if result is None:
                missing.append(path.name)
            else:
                found.append(result.fused_live_score)
        return found, missing

    bona_fide, no_face_b = scores(args.bona_fide)
    attacks, no_face_a = scores(args.attack)
    report = evaluation.pad_report(bona_fide, attacks, pipeline.pad.threshold)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "models": pipeline.pad.model_ids,
        **report.as_dict(),
        "no_face": no_face_b + no_face_a,
    }
    (args.out / "pad_report.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not k.endswith("_scores")}, indent=2))
    return 0


def _photo_paths(items: list[Path]) -> list[Path]:
    paths: list[Path] = []
    for item in items:
        paths.extend(sorted(item.glob("*.jpg")) if item.is_dir() else [item])
    return paths


def run_conditions(args: argparse.Namespace) -> int:
    pipeline = FacePipeline.load()
    assert pipeline.pad is not None
    evaluator = ConditionEvaluator(pipeline.detector, pipeline.pad)
    paths = _photo_paths(args.images)
    photos = [images.decode(p.read_bytes(), LIMITS) for p in paths]
    result = {
        "models": pipeline.pad.model_ids,
        "threshold": pipeline.pad.threshold,
        "framing": evaluator.framing_report(photos),
        "attacks": evaluator.attack_report(photos),
        "gates": evaluator.gate_report(photos, [p.name for p in paths]),
    }
    if args.pairs:
        pairs = [(x, y, same) for (x, y), same in unique_pairs(args.pairs).items()]
        result["pairs"] = pair_report(pipeline, pairs, args.images[0], args.threshold)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "conditions_report.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(0)
