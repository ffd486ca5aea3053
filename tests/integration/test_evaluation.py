"""The evaluation tool the project ships, on the labelled test pairs and the spoof photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from identity_cli.main import main as identity
from identity_inference import evaluation
from identity_inference.manifest import PACKAGED_MANIFESTS
from tests.support.biometrics import FACES, SPOOF

pytestmark = [pytest.mark.models]


def test_metrics_on_known_scores() -> None:
    genuine = [0.9, 0.8, 0.7, 0.4]
    impostor = [0.1, 0.2, 0.3, 0.5, 0.0]
    report = evaluation.verification_report(genuine, impostor, targets=(0.2, 0.01))
    # 19 of the 20 genuine/impostor orderings are right.
    assert report.auc == pytest.approx(19 / 20)
    loose, strict = report.operating_points
    # Just above 0.3 only the 0.5 impostor still matches: FMR 1/5.
    assert loose.fmr == pytest.approx(0.2) and 0.3 < loose.threshold < 0.31 and loose.fnmr == 0
    assert strict.fmr == 0 and strict.threshold == pytest.approx(0.5) and strict.fnmr == 0.25
    pad = evaluation.pad_report([0.9, 0.2], [0.1, 0.7, 0.3], 0.5)
    assert (pad.apcer, pad.bpcer) == (pytest.approx(1 / 3), 0.5)


def test_the_impostor_tail_estimates_fmr() -> None:
    calibration = {
        "impostor_scores": evaluation.fit_impostor_tail(
            list(np.linspace(-0.1, 0.3, 101)), "synthetic"
        )
    }
    threshold = evaluation.threshold_for_fmr(calibration, 1e-4)
    assert evaluation.estimate_fmr(calibration, threshold) == pytest.approx(1e-4, rel=1e-6)
    assert evaluation.estimate_fmr(calibration, 0.1) == pytest.approx(0.5, abs=1e-6)


@pytest.mark.slow
def test_master_pairs_separate_genuine_from_impostor(tmp_path: Path, capsys) -> None:
    pairs = FACES / "master.csv"
    manifest = tmp_path / "sface.json"
    shutil.copyfile(PACKAGED_MANIFESTS / "sface-2021dec.json", manifest)
    code = identity(
        [
            "eval",
            "pairs",
            "--pairs",
            str(pairs),
            "--images",
            str(FACES),
            "--out",
            str(tmp_path / "out"),
            "--write-calibration",
            str(manifest),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (report["genuine"], report["impostor"], report["skipped_no_face_or_missing"]) == (
        38,
        262,
        0,
    )
    assert report["auc"] > 0.99
    assert report["genuine_mean"] - report["impostor_mean"] > 0.5
    at_1e3 = next(p for p in report["operating_points"] if p["fmr_target"] == 1e-3)
    assert at_1e3["fmr"] == 0.0
    assert at_1e3["threshold"] > report["impostor_max"]
    assert at_1e3["fnmr"] <= 0.05
    assert (tmp_path / "out" / "det.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "out" / "histogram.png").read_bytes()[:4] == b"\x89PNG"
    calibration = json.loads(manifest.read_text())["calibration"]
    assert calibration["impostor_scores"]["samples"] == 262
    assert evaluation.estimate_fmr(calibration, report["impostor_max"]) < 0.05
    assert "auc" in capsys.readouterr().out


@pytest.mark.slow
def test_pad_evaluation_on_the_spoof_photos(tmp_path: Path) -> None:
    code = identity(
        [
            "eval", "pad",
            "--bona-fide", str(SPOOF / "image_T1.jpg"),
            "--attack", str(SPOOF / "image_F1.jpg"), str(SPOOF / "image_F2.jpg"),
            "--out", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads((tmp_path / "pad_report.json").read_text())
    assert (report["apcer"], report["bpcer"]) == (0.0, 0.0)
    assert report["attacks"] == 2 and report["bona_fide"] == 1


def test_wilson_intervals() -> None:
    from identity_inference.conditions import wilson

    low, high = wilson(0, 62)
    assert low == 0 and high == pytest.approx(0.0583, abs=1e-3)
    low, high = wilson(3, 63)
    assert (low, high) == (pytest.approx(0.0163, abs=1e-3), pytest.approx(0.1309, abs=1e-3))
    assert wilson(0, 0) == (0.0, 1.0)


def test_eval_conditions_reports_framing_attacks_gates_and_pairs(tmp_path: Path) -> None:
    faces = tmp_path / "faces"
    faces.mkdir()
    for name in ("img1.jpg", "img2.jpg", "img20.jpg"):
        shutil.copy(FACES / name, faces / name)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("file_x,file_y,Decision\nimg1.jpg,img2.jpg,Yes\nimg1.jpg,img20.jpg,No\n")
    args = ["eval", "conditions", "--images", str(faces), str(FACES / "couple.jpg")]
    assert identity([*args, "--pairs", str(pairs), "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "conditions_report.json").read_text())
    tight, sdk = report["framing"]["tight"], report["framing"]["sdk"]
    # A face cropped tight is sent back before PAD; the SDK framing reaches PAD.
    assert tight["face_too_close"] == tight["bpcer_before"]["total"] == 4
    assert sdk["bpcer_after"]["total"] >= 3
    attacks = report["attacks"]
    kinds = {"print_halftone", "print_paper", "screen_moire", "screen_glare"}
    assert set(attacks) == {"bona_fide"} | kinds
    # The moire replay of real faces is scored as an attack.
    moire = attacks["screen_moire"]["apcer"]
    assert moire["total"] >= 3 and moire["errors"] == 0 and len(moire["ci95"]) == 2
    gates = report["gates"]
    assert gates["photos"] == 4
    assert gates["refused_by_gate"]["MULTIPLE_FACES"]["photos"] == ["couple.jpg"]
    by_pose, by_degradation = report["pairs"]["pose"], report["pairs"]["degradation"]
    assert sum(b["fnmr"]["total"] + b["fmr"]["total"] for b in by_pose.values()) == 2
    assert set(by_degradation) == {"none", "blur", "jpeg_q20", "low_resolution", "dark"}
    none = by_degradation["none"]
    assert (none["fnmr"]["errors"], none["fnmr"]["total"], none["fmr"]["total"]) == (0, 1, 1)
