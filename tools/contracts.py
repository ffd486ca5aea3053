#!/usr/bin/env python3
"""Generate, and check for drift, the Python code of the protobuf contracts.

One tool, one pinned generator (grpcio-tools, see pyproject.toml):

    tools/contracts.py generate   # protos/ -> libs/identity/ (*_pb2.py, *_pb2.pyi, *_pb2_grpc.py,
                                  #   descriptor_set.binpb)
    tools/contracts.py check      # exit 1 when libs/identity/ differs from a fresh generation
    tools/contracts.py deps       # copy google/api protos for buf into .build/proto-deps/
    tools/contracts.py breaking --against REF
                                  # buf breaking: the working tree's contracts vs those at git REF

Generated modules keep the proto package as their import path
(`identity.kyc_tier.v1.customers_pb2`), so no import is rewritten.
Python descriptors carry no comments, so a FileDescriptorSet of our own
files with source info (`identity/descriptor_set.binpb`) is generated too:
the gateway's OpenAPI document takes its descriptions from it.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.metadata
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUTPUT_ROOT = ROOT / "libs"
GENERATED_PACKAGE = OUTPUT_ROOT / "identity"
DEPS_ROOT = ROOT / ".build" / "proto-deps"
# The google protos our contracts import, shipped by googleapis-common-protos.
GOOGLE_DEPS = ("google/api/annotations.proto", "google/api/http.proto", "google/api/httpbody.proto")
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
# Our contracts with comments (source info), without the imported google protos.
DESCRIPTOR_SET = "descriptor_set.binpb"
# Directories of generated packages hold nothing but generated files.
MARKER = GENERATED_PACKAGE / "README.md"
MARKER_TEXT = """# Generated code: do not edit

Everything under `libs/identity/` is generated from `protos/identity/` by
`tools/contracts.py generate` with grpcio-tools {version}. CI runs
`tools/contracts.py check` and fails when this tree is stale.
"""


def _site_packages_with(relative: str) -> Path:
    for entry in map(Path, sys.path):
        if (entry / relative).is_file():
            return entry
    raise SystemExit(f"cannot find {relative} on sys.path: is googleapis-common-protos installed?")


def _proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def _generate_into(out_dir: Path) -> None:
    from grpc_tools import protoc

    (out_dir / "identity").mkdir(parents=True, exist_ok=True)
    well_known = Path(protoc.__file__).parent / "_proto"
    googleapis = _site_packages_with(GOOGLE_DEPS[0])
    files = [str(p.relative_to(PROTO_ROOT)) for p in _proto_files()]
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{googleapis}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--descriptor_set_out={out_dir / 'identity' / DESCRIPTOR_SET}",
        "--include_source_info",
        *files,
    ]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    # Regular packages (not namespace packages), so that tools walking the
    # tree, and installs of the wheel, see every module.
    for directory in [out_dir / "identity", *(p for p in (out_dir / "identity").rglob("*") if p.is_dir())]:
        (directory / "__init__.py").write_text("")
    marker = out_dir / "identity" / "README.md"
    marker.write_text(MARKER_TEXT.format(version=importlib.metadata.version("grpcio-tools")))


def _generated_files(root: Path) -> set[Path]:
    package = root / "identity"
    if not package.exists():
        return set()
    return {
        p.relative_to(root)
        for p in package.rglob("*")
        if p.is_file() and (p.name.endswith(GENERATED_SUFFIXES) or p.name in ("README.md", "__init__.py", DESCRIPTOR_SET))
    }


def generate() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_root = Path(tmp)
        _generate_into(tmp_root)
        if GENERATED_PACKAGE.exists():
            shutil.rmtree(GENERATED_PACKAGE)
        shutil.copytree(tmp_root / "identity", GENERATED_PACKAGE)
    print(f"generated {len(_generated_files(OUTPUT_ROOT))} files under {GENERATED_PACKAGE.relative_to(ROOT)}")


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_root = Path(tmp)
        _generate_into(tmp_root)
        fresh = _generated_files(tmp_root)
        current = _generated_files(OUTPUT_ROOT)
        missing = sorted(fresh - current)
        extra = sorted(current - fresh)
        changed = sorted(p for p in fresh & current if not filecmp.cmp(tmp_root / p, OUTPUT_ROOT / p, shallow=False))
    problems = [f"missing: {p}" for p in missing] + [f"stale file: {p}" for p in extra] + [f"out of date: {p}" for p in changed]
    if problems:
        print("generated contracts are stale; run `tools/contracts.py generate` and commit:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"generated contracts are up to date ({len(fresh)} files)")
    return 0


def deps() -> None:
    googleapis = _site_packages_with(GOOGLE_DEPS[0])
    for relative in GOOGLE_DEPS:
        target = DEPS_ROOT / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(googleapis / relative, target)
    print(f"copied {len(GOOGLE_DEPS)} google protos into {DEPS_ROOT.relative_to(ROOT)}")


def breaking(against: str) -> int:
    """Run `buf breaking` against the contracts as they were at a git revision.

    The old tree is exported with `git archive` and built into an image with
    the same google deps, because buf cannot fetch them from the registry."""
    import subprocess

    buf = shutil.which("buf") or str(Path(sys.executable).parent / "buf")
    listed = subprocess.run(["git", "ls-tree", "-d", against, "protos"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0 or not listed.stdout.strip():
        print(f"no contracts at {against}: nothing to compare")
        return 0
    deps()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        old.mkdir()
        archive = subprocess.run(["git", "archive", against, "protos", "buf.yaml"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        shutil.copytree(DEPS_ROOT, old / ".build" / "proto-deps")
        image = Path(tmp) / "old.binpb"
        subprocess.run([buf, "build", str(old), "-o", str(image)], check=True)
        current = Path(tmp) / "current.binpb"
        subprocess.run([buf, "build", str(ROOT), "-o", str(current)], check=True)
        result = subprocess.run([buf, "breaking", str(current), "--against", str(image)], cwd=ROOT)
    if result.returncode == 0:
        print(f"contracts are wire- and source-compatible with {against}")
    return result.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["generate", "check", "deps", "breaking"])
    parser.add_argument("--against", default="HEAD~1", help="git revision for `breaking`")
    arguments = parser.parse_args()
    command = arguments.command
    if command == "breaking":
        return breaking(arguments.against)
    if command == "generate":
        generate()
    elif command == "check":
        return check()
    else:
        deps()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
