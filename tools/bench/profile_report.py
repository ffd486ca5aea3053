"""Summarise the mesh's CPU samples (tools/bench/sampler/sitecustomize.py).

    .venv/bin/python tools/bench/profile_report.py DIR [--top 25] [--module kyc_tier]

For each process (the samples of every pid of one module summed): the
functions the samples were in (self), and the functions on the sampled
stacks (inclusive), as a share of that process's sampled CPU. A function is
named function@file:line of its definition's enclosing frame (the line
sampled is dropped, so a function's lines add up). Nothing is timed here.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

SITE = re.compile(r".*/site-packages/")
PYTHON = re.compile(r".*/lib/python3\.\d+/")


def short(frame: str) -> str:
    name, _, where = frame.partition("@")
    path = where.rsplit(":", 1)[0]
    path = SITE.sub("", path)
    path = PYTHON.sub("", path)
    path = re.sub(r".*/(libs|services|gateway|identity_cli|tools)/", r"\1/", path)
    return f"{name} ({path})"


def load(directory: Path) -> dict[str, Counter[tuple[str, ...]]]:
    by_module: dict[str, Counter[tuple[str, ...]]] = {}
    for file in sorted(directory.glob("*.txt")):
        module = file.name.split(".")[-3]
        stacks = by_module.setdefault(module, Counter())
        for line in file.read_text().splitlines():
            count, _, stack = line.partition("\t")
            stacks[tuple(short(f) for f in stack.split(";"))] += int(count)
    return by_module


def report(stacks: Counter[tuple[str, ...]], top: int) -> list[str]:
    total = sum(stacks.values())
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for stack, count in stacks.items():
        own[stack[-1]] += count
        for name in set(stack):
            inclusive[name] += count
    lines = [f"  {total / 1000:.0f} ms of CPU sampled", "  self:"]
    lines += [f"    {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    lines.append("  inclusive:")
    lines += [f"    {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--module", action="append", default=[])
    args = parser.parse_args()
    for module, stacks in load(args.directory).items():
        if args.module and module not in args.module:
            continue
        print(module)
        print("\n".join(report(stacks, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
