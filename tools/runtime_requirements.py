#!/usr/bin/env python3
"""Print the project's runtime dependencies (pyproject.toml [project].dependencies),
one per line, for `pip install -c requirements.lock -r -`.

The Dockerfile installs these under the lock's constraints, so the image gets
the runtime closure at exactly the versions CI tested, without the dev tools.
Standard library only: it runs in the image's build stage before anything is installed.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def runtime_requirements(pyproject: Path) -> list[str]:
    with open(pyproject, "rb") as handle:
        return list(tomllib.load(handle)["project"]["dependencies"])


def main(argv: list[str]) -> int:
    pyproject = (
        Path(argv[1])
        if len(argv) > 1
        else Path(__file__).resolve().parent.parent / "pyproject.toml"
    )
    for requirement in runtime_requirements(pyproject):
        print(requirement)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
