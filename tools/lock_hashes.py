#!/usr/bin/env python3
"""Write requirements-runtime.lock: the runtime closure of the image, every
package pinned (the versions of requirements.lock) with the sha256 of the
file pip installs for the image's platform (CPython 3.11, manylinux x86_64),
so the Dockerfile installs with `pip install --require-hashes`.

    tools/lock_hashes.py generate   resolve with pip (--dry-run --report, from the
                                    configured index: only metadata is fetched)
    tools/lock_hashes.py check      exit 1 when the hashed lock's pins differ from
                                    requirements.lock's for the runtime closure (offline)

Run `generate` after changing requirements.lock or the runtime dependencies.
The hashes are the index's (PEP 503 `#sha256=` links); the image's `pip`
verifies every downloaded file against them, from PyPI or a mirror
(PIP_INDEX_URL).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
HASHED = ROOT / "requirements-runtime.lock"
HEADER = (
    "# The image's runtime closure, pinned with hashes (tools/lock_hashes.py generate;\n"
    "# the versions are requirements.lock's). Installed by the Dockerfile with\n"
    "# `pip install --require-hashes --no-deps`; platform: CPython 3.11, manylinux x86_64.\n"
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    result = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", line.strip())
        if match:
            result[canonical(match.group(1))] = match.group(2)
    return result


def runtime_requirements() -> list[str]:
    sys.path.insert(0, str(ROOT / "tools"))
    from runtime_requirements import runtime_requirements as requirements

    return requirements(ROOT / "pyproject.toml")


def generate() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("\n".join(runtime_requirements()) + "\n")
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                # Run on the image's platform (CPython 3.11, Linux x86_64): pip
                # picks the files the image's build will pick.
                sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                "--quiet", "--report", str(report), "-c", str(LOCK), "-r", str(requirements),
            ],
            check=True,
        )  # fmt: skip
        installs = json.loads(report.read_text())["install"]
    lines = [HEADER]
    for item in sorted(installs, key=lambda i: canonical(i["metadata"]["name"])):
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        archive = item["download_info"].get("archive_info", {})
        digest = archive.get("hashes", {}).get("sha256")
        if not digest:
            print(f"{name}: the index gave no sha256", file=sys.stderr)
            return 1
        lines.append(f"{canonical(name)}=={version} \\\n    --hash=sha256:{digest}\n")
    HASHED.write_text("".join(lines))
    print(f"wrote {HASHED.relative_to(ROOT)} ({len(installs)} packages)")
    return check()


def check() -> int:
    locked = pins(LOCK.read_text())
    hashed = pins(HASHED.read_text())
    wrong = {n: (v, locked.get(n)) for n, v in hashed.items() if locked.get(n) != v}
    entries = HASHED.read_text().split("==")[1:]
    unhashed = [entry for entry in entries if "--hash=sha256:" not in entry]
    for name, (version, expected) in wrong.items():
        print(f"{name}=={version}: requirements.lock has {expected}", file=sys.stderr)
    return 1 if wrong or unhashed else 0


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    return generate() if command == "generate" else check()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
