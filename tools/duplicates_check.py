"""Count the near-copies in the hand-written Python (issue 9's measure).

Hand-written Python: the *.py files git tracks under libs/, services/,
gateway/, identity_cli/ and tools/, without the Alembic migrations
(services/*/migrations/, identity_cli/legacy_schema/: schema history) and
without generated contract code. They are copied, paths kept, into a
temporary folder and read there by the `duplicates` command (pairs of places
sharing six or more lines of the same shape), so that nothing else in the
tree counts.

    .venv/bin/python tools/duplicates_check.py                 # the report
    .venv/bin/python tools/duplicates_check.py --max-pairs 29  # exit 1 above

A second, informational line counts the declaration-only pairs: both places
of the run a row names hold nothing but decorators, class headers, annotated
field declarations, docstrings, comments and blank lines (dataclasses, ORM
columns, settings fields that merely look alike). It is read from the named
run only (a row's further runs are not listed by the tool) and it changes
nothing: the headline count and --max-pairs stay the tool's raw count.

`duplicates` is not part of this project or its dependencies; where it is
not on PATH this says so and exits 3 (nothing measured).
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("libs", "services", "gateway", "identity_cli", "tools")
# Schema history and generated code: not written by hand.
EXCLUDED = re.compile(
    r"(^services/[^/]+/migrations/|^identity_cli/legacy_schema/|_pb2(_grpc)?\.py$)"
)
NOT_INSTALLED = 3


def hand_written(root: Path = ROOT) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--", *FOLDERS],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    return [p for p in listed if p.endswith(".py") and not EXCLUDED.search(p)]


def measure(files: list[str], seconds: int, most: int, root: Path = ROOT) -> str:
    with tempfile.TemporaryDirectory(prefix="duplicates-check-") as scratch:
        for name in files:
            target = Path(scratch, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / name, target)
        return subprocess.run(
            ["duplicates", "--seconds", str(seconds), "--most", str(most)],
            cwd=scratch,
            check=True,
            capture_output=True,
            text=True,
        ).stdout


def pair_count(report: str) -> int:
    first = report.splitlines()[0] if report else ""
    if first.startswith("no duplicates"):
        return 0
    found = re.match(r"(\d+) pairs? of places", first)
    if not found:
        raise ValueError(f"unexpected first line from duplicates: {first!r}")
    return int(found.group(1))


# "D7 a.py:10-24 ~ b.py:40-54 shape ...": the two places of the named run.
ROW_PLACES = re.compile(r"^D\d+ (\S+):(\d+)-(\d+) ~ (\S+):(\d+)-(\d+)")


def _declaration_lines(source: str) -> set[int]:
    """Lines of `source` that belong to a declaration: a decorator, a class
    header, an annotated field of a class body, a docstring."""
    lines: set[int] = set()

    def span(node: ast.expr | ast.stmt) -> range:
        return range(node.lineno, (node.end_lineno or node.lineno) + 1)

    def visit(body: list[ast.stmt], in_class: bool) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                for decorator in node.decorator_list:
                    lines.update(span(decorator))
                lines.update(range(node.lineno, node.body[0].lineno))
                visit(node.body, in_class=True)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for decorator in node.decorator_list:
                    lines.update(span(decorator))
            elif (isinstance(node, ast.AnnAssign) and in_class) or (
                isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                lines.update(span(node))

    visit(ast.parse(source).body, in_class=False)
    return lines


def declaration_only(report: str, root: Path = ROOT) -> int:
    """How many rows of `report` name a run that is declarations on both sides."""
    cache: dict[str, tuple[list[str], set[int]]] = {}

    def only_declarations(name: str, first: int, last: int) -> bool:
        if name not in cache:
            source = (root / name).read_text(encoding="utf-8")
            cache[name] = (source.splitlines(), _declaration_lines(source))
        text, declared = cache[name]
        for number in range(first, last + 1):
            stripped = text[number - 1].strip()
            if stripped and not stripped.startswith("#") and number not in declared:
                return False
        return True

    count = 0
    for row in report.splitlines():
        found = ROW_PLACES.match(row)
        if found:
            a, a1, a2, b, b1, b2 = found.groups()
            if only_declarations(a, int(a1), int(a2)) and only_declarations(b, int(b1), int(b2)):
                count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-pairs", type=int, help="exit 1 when there are more pairs")
    parser.add_argument("--seconds", type=int, default=60, help="time the tool may take")
    parser.add_argument("--most", type=int, default=200, help="rows to list")
    args = parser.parse_args(argv)
    if shutil.which("duplicates") is None:
        print(
            "duplicates_check: the `duplicates` command is not installed here; "
            "nothing was measured",
            file=sys.stderr,
        )
        return NOT_INSTALLED
    files = hand_written()
    report = measure(files, args.seconds, args.most)
    print(report, end="")
    pairs = pair_count(report)
    print(
        f"duplicates_check: (informational) {declaration_only(report)} of the listed pairs "
        "are declaration-only"
    )
    print(f"duplicates_check: {pairs} pairs in {len(files)} hand-written Python files")
    if "incomplete:" in report:
        print("duplicates_check: the tool did not read everything (see above)", file=sys.stderr)
        return 1
    if args.max_pairs is not None and pairs > args.max_pairs:
        print(f"duplicates_check: more than {args.max_pairs} pairs", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
