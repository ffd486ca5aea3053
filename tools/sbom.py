#!/usr/bin/env python3
"""The image's software bill of materials (CycloneDX 1.5 JSON), and its size.

    tools/sbom.py sbom [--output FILE]   every package of requirements-runtime.lock
                                         as installed here (name, version, purl,
                                         licence, the lock's sha256) plus the project
    tools/sbom.py size [NAME ...]        bytes the installed runtime closure takes
                                         (RECORD sizes), and what NAMEs' own closures add

The Dockerfile's build stage runs `sbom` in the image's virtual environment
and ships the result as /opt/identity/sbom.cdx.json. Standard library only.
"""

from __future__ import annotations

import argparse
import email.message
import importlib.metadata as metadata
import json
import re
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent
HASHED = ROOT / "requirements-runtime.lock"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, tuple[str, str]]:
    """name -> (version, sha256) of the hashed lock."""
    text = path.read_text()
    return {
        canonical(m.group(1)): (m.group(2), m.group(3))
        for m in re.finditer(
            r"^([A-Za-z0-9_.\-]+)==(\S+) \\\n\s+--hash=sha256:([0-9a-f]{64})", text, re.M
        )
    }


def licence(dist: metadata.Distribution) -> str:
    """The SPDX expression, else the licence classifier, else the License field's first line."""
    # An email.message.Message: Python 3.11's PackageMetadata protocol lacks its get.
    meta = cast(email.message.Message, dist.metadata)
    if meta.get("License-Expression"):
        return str(meta["License-Expression"])
    for classifier in meta.get_all("Classifier") or []:
        if classifier.startswith("License ::"):
            return classifier.rsplit(" :: ", 1)[-1]
    return (meta.get("License") or "").strip().split("\n", 1)[0][:200]


def sbom(lock: Path) -> dict:
    pins = locked(lock)
    components = []
    for name, (version, digest) in sorted(pins.items()):
        dist = metadata.distribution(name)
        if dist.version != version:
            raise SystemExit(f"{name}: installed {dist.version}, locked {version}")
        component = {
            "type": "library",
            "bom-ref": f"pkg:pypi/{name}@{version}",
            "name": name,
            "version": version,
            "purl": f"pkg:pypi/{name}@{version}",
            "hashes": [{"alg": "SHA-256", "content": digest}],
        }
        if licence(dist):
            component["licenses"] = [{"license": {"name": licence(dist)}}]
        components.append(component)
    project = metadata.distribution("identity-platform")
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": "tools/sbom.py"}]},
            "component": {
                "type": "application",
                "bom-ref": f"pkg:pypi/identity-platform@{project.version}",
                "name": "identity-platform",
                "version": project.version,
            },
        },
        "components": components,
    }


def installed_bytes(name: str) -> int:
    files = metadata.distribution(name).files or []
    return sum(int(f.size or 0) for f in files)


def closure(name: str) -> set[str]:
    """`name` and everything it requires (extras aside), as installed here."""
    seen: set[str] = set()
    pending = [canonical(name)]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for requirement in metadata.distribution(current).requires or []:
            if "extra ==" in requirement:
                continue
            pending.append(canonical(re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]))
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("sbom")
    make.add_argument("--lock", type=Path, default=HASHED)
    make.add_argument("--output", type=Path)
    size = sub.add_parser("size")
    size.add_argument("extra", nargs="*", help="packages whose closures to add (e.g. matplotlib)")
    args = parser.parse_args(argv)
    if args.command == "sbom":
        text = json.dumps(sbom(args.lock), indent=1) + "\n"
        if args.output:
            args.output.write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    runtime = set(locked(HASHED))
    total = sum(installed_bytes(n) for n in runtime)
    print(f"runtime closure: {len(runtime)} packages, {total / 2**20:.0f} MiB installed")
    for name in args.extra:
        added = closure(name) - runtime
        extra = sum(installed_bytes(n) for n in added)
        print(
            f"+ {name}: {len(added)} packages ({', '.join(sorted(added))}), {extra / 2**20:.0f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
