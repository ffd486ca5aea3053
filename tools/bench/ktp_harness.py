"""KTP robustness harness: degraded captures of the repository's own cards.

    .venv/bin/python tools/bench/ktp_harness.py [--only SUBSTRING ...] [--json out.json]
    .venv/bin/python tools/bench/ktp_harness.py --summary a.json [b.json]

Renders every case of tests/support/ktp_sweep.py (fixed seeds), runs the
KTP pipeline in-process (KtpAnalyzer: card finder, portrait, gates, OCR,
parsing, NIK checks, verdict) and prints one row per case and a summary per
degradation group:

- fields correct out of 17 and NIK exact;
- passed, wrong NIK passed, wrong NIK stored (what kyc-tier would keep for a
  customer without a partner NIK);
- gate verdicts: refusals of perfect reads (all 17 fields and the NIK exact,
  but a gate refused) and misses of failed reads (a field or the NIK wrong,
  and no gate said retake);
- card finder success (corners within 4 % of the card width of the truth);
- latency per analysis (median).

`--summary` prints the summary of saved runs (e.g. before and after a change)
side by side without running anything.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

import common  # noqa: F401  (puts this checkout on sys.path)

from tests.support.ktp_sweep import (
    SCORED_FIELDS,
    build_attacks,
    build_cases,
    run_case,
)

ATTACK_GROUPS = ("print", "photocopy", "screen")
ATTACK_SIGNALS = ("SCREEN_RECAPTURE_SUSPECTED", "HALFTONE_PRINT_SUSPECTED", "PHOTOCOPY_SUSPECTED")
# What each attack signal names the medium as (the flash verdict names a screen).
MEDIUM = {
    "SCREEN_RECAPTURE_SUSPECTED": "screen",
    "CARD_FLASH_RESPONSE_MISSING": "screen",
    "HALFTONE_PRINT_SUSPECTED": "print",
    "PHOTOCOPY_SUSPECTED": "photocopy",
}


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion."""
    if total == 0:
        return (0.0, 1.0)
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * ((p * (1 - p) / total + z * z / (4 * total * total)) ** 0.5) / (1 + z * z / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


def pad_table(rows: list[dict[str, Any]]) -> None:
    """APCER per attack type (attacks that passed the check) and BPCER
    (genuine captures refused because of an attack signal), 95 % CIs."""
    genuine = [r for r in rows if r["group"] not in ATTACK_GROUPS]
    refused = sum(
        any(code in ATTACK_SIGNALS for code in r["extra"].get("decisive", []))
        or bool(r["extra"].get("flash"))
        for r in genuine
    )
    flagged = sum(
        any(code in ATTACK_SIGNALS for code in r["extra"].get("signals", [])) for r in genuine
    )
    low, high = wilson(refused, len(genuine))
    print()
    print(
        "| set | n | accepted (APCER) / refused by an attack signal or the flash (BPCER) "
        "| 95 % CI | attack signal fired | named as |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| genuine captures (BPCER) | {len(genuine)} | {refused} | {low:.2f}–{high:.2f} "
        f"| {flagged} | |"
    )
    for group in ATTACK_GROUPS:
        attacks = [r for r in rows if r["group"] == group]
        if not attacks:
            continue
        accepted = sum(r["passed"] for r in attacks)
        fired = sum(
            any(code in ATTACK_SIGNALS for code in r["extra"].get("signals", [])) for r in attacks
        )
        low, high = wilson(accepted, len(attacks))
        named = ", ".join(
            f"{medium} {sum(medium in _media(r) for r in attacks)}"
            for medium in ("print", "photocopy", "screen")
            if any(medium in _media(r) for r in attacks)
        )
        print(
            f"| {group} (APCER) | {len(attacks)} | {accepted} | {low:.2f}–{high:.2f} "
            f"| {fired} | {named or '-'} |"
        )


def _media(row: dict[str, Any]) -> set[str]:
    """The media the capture's signals and flash verdict name."""
    codes = list(row["extra"].get("signals", [])) + list(row["extra"].get("flash", []))
    return {MEDIUM[code] for code in codes if code in MEDIUM}


def analyzer(threads: int) -> Any:
    from identity_ktp.analysis import KtpAnalyzer
    from identity_ktp.ocr import OcrEngine
    from identity_ktp.portrait import PortraitFinder, load_face_detector
    from identity_ktp.regions import default_index

    return KtpAnalyzer(
        OcrEngine(threads=threads), PortraitFinder(load_face_detector()), default_index()
    )


def _perfect(row: dict[str, Any]) -> bool:
    return bool(row["fields_correct"] == len(SCORED_FIELDS) and row["nik_exact"])


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["group"] == "cut" and row["finder_ok"] is None:
            # Runs saved before cuts were scored: right only if nothing was read.
            row["finder_ok"] = "CARD_PARTIALLY_OUTSIDE" in row["reasons"] or not row["card_found"]
        groups.setdefault(row["group"], []).append(row)
    groups["ALL genuine"] = [r for r in rows if r["group"] not in ATTACK_GROUPS]
    table = {}
    for group, members in groups.items():
        finder = [r["finder_ok"] for r in members if r["finder_ok"] is not None]
        perfect = [r for r in members if _perfect(r)]
        failed = [r for r in members if not _perfect(r)]
        table[group] = {
            "cases": len(members),
            "perfect_reads": len(perfect),
            "nik_exact": sum(r["nik_exact"] for r in members),
            "passed": sum(r["passed"] for r in members),
            "gate_refused_perfect": sum(bool(r["gates_failed"]) for r in perfect),
            "gate_missed_failed": sum(not r["gates_failed"] for r in failed),
            "finder_ok": f"{sum(finder)}/{len(finder)}" if finder else "-",
            "decisive_signal": sum(bool(r["extra"].get("decisive")) for r in members),
            "wrong_nik_passed": sum(r["wrong_nik_passed"] for r in members),
            "wrong_nik_stored": sum(r["wrong_nik_stored"] for r in members),
            "median_ms": round(1000 * statistics.median(r["seconds"] for r in members)),
        }
    return table


COLUMNS = (
    "cases",
    "perfect_reads",
    "nik_exact",
    "passed",
    "gate_refused_perfect",
    "gate_missed_failed",
    "finder_ok",
    "decisive_signal",
    "wrong_nik_passed",
    "wrong_nik_stored",
    "median_ms",
)


def print_summary(runs: list[tuple[str, list[dict[str, Any]]]]) -> None:
    tables = [(label, summarise(rows)) for label, rows in runs]
    print("| group | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    groups = list(tables[0][1])
    for group in groups:
        for label, table in tables:
            if group not in table:
                continue
            name = f"{group} ({label})" if len(tables) > 1 else group
            print(f"| {name} | " + " | ".join(str(table[group][c]) for c in COLUMNS) + " |")


def latency(engine: Any, cases: list[Any], rounds: int) -> None:
    """Median seconds per analysis of each clean card (one warm-up each)."""
    import time

    images = {case.name: case.render()[0] for case in cases}
    for image in images.values():
        engine.analyze(image)
    samples: dict[str, list[float]] = {name: [] for name in images}
    stages: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, image in images.items():
            start = time.perf_counter()
            report = engine.analyze(image)
            samples[name].append(time.perf_counter() - start)
            for stage, seconds in report.timings.items():
                stages.setdefault(stage, []).append(seconds)
    for stage, values in stages.items():
        print(f"stage {stage:14s} median {1000 * statistics.median(values):7.1f} ms")
    everything = [s for values in samples.values() for s in values]
    for name, values in samples.items():
        print(f"{name:20s} median {1000 * statistics.median(values):7.0f} ms  n={len(values)}")
    print(f"{'all clean':20s} median {1000 * statistics.median(everything):7.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=[], help="run cases whose name has one")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-attacks", action="store_true", help="genuine captures only")
    parser.add_argument("--summary", nargs="*", type=Path, help="summarise saved runs")
    parser.add_argument(
        "--latency", type=int, default=0, help="only time the clean cards, this many rounds"
    )
    args = parser.parse_args()

    if args.summary:
        runs = [(p.stem, json.loads(p.read_text())["rows"]) for p in args.summary]
        print_summary(runs)
        for label, rows in runs:
            print(f"\n{label}:", end="")
            pad_table(rows)
        return
    every = build_cases() + ([] if args.no_attacks else build_attacks())
    cases = [c for c in every if not args.only or any(s in c.name for s in args.only)]
    engine = analyzer(args.threads)
    if args.latency:
        latency(engine, [c for c in build_cases() if c.group == "clean"], args.latency)
        return
    import identity_ktp

    print(f"# identity_ktp from {Path(identity_ktp.__file__).parent}; {len(cases)} cases")
    rows = []
    for case in cases:
        outcome = run_case(engine, case)
        row = asdict(outcome)
        rows.append(row)
        print(
            f"{case.name:34s} found={int(outcome.card_found)} finder={outcome.finder_ok!s:5s} "
            f"fields={outcome.fields_correct:2d}/17 nik={int(outcome.nik_exact)} "
            f"pass={int(outcome.passed)} stored={int(outcome.nik_stored)} "
            f"WRONG={int(outcome.wrong_nik_stored)} {outcome.seconds * 1000:6.0f}ms "
            f"{','.join(outcome.reasons)}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=1))
    print()
    print_summary([("run", rows)])
    pad_table(rows)


if __name__ == "__main__":
    main()
