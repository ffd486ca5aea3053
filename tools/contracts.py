#!/usr/bin/env python3
"""Generate, and check for drift, the Python code of the protobuf contracts.

One tool, pinned generators (see pyproject.toml): grpcio-tools' protoc for
the code, and mypy-protobuf's plugins, run by the same protoc, for the type
stubs of both the message and the gRPC modules:

    tools/contracts.py generate   # protos/ -> contracts/python/identity_platform_api/
                                  #   (*_pb2.py, *_pb2.pyi, *_pb2_grpc.py, *_pb2_grpc.pyi,
                                  #    descriptor_set.binpb)
    tools/contracts.py check      # exit 1 when the generated tree differs from a fresh generation
    tools/contracts.py deps       # copy google/api protos for buf into .build/proto-deps/
    tools/contracts.py breaking --against REF
                                  # buf breaking: the working tree's contracts vs those at git REF

The proto packages are `identity.<service>.v1`; the generated Python lives
under `identity_platform_api.<service>.v1` so that it cannot clash with the
unrelated `identity` package on PyPI. The mapping is made on the descriptors,
not on the generated text: protoc first compiles `protos/` into a descriptor
set, the file names `identity/...proto` (and every dependency on them) become
`identity_platform_api/...proto`, and protoc generates from that set. Wire
names (`identity.kyc_tier.v1.CustomerService`) are unchanged.
Python descriptors carry no comments, so a FileDescriptorSet of our own
files with source info (`descriptor_set.binpb`) is generated too: the
gateway's OpenAPI document takes its descriptions from it.
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
OUTPUT_ROOT = ROOT / "contracts" / "python"
# Python package of the generated code; proto files named `identity/...` are
# generated as `identity_platform_api/...`.
PYTHON_PACKAGE = "identity_platform_api"
PROTO_PREFIX = "identity/"
GENERATED_PACKAGE = OUTPUT_ROOT / PYTHON_PACKAGE
DEPS_ROOT = ROOT / ".build" / "proto-deps"
# The google protos our contracts import, shipped by googleapis-common-protos.
GOOGLE_DEPS = ("google/api/annotations.proto", "google/api/http.proto", "google/api/httpbody.proto")
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
# Our contracts with comments (source info), without the imported google protos.
DESCRIPTOR_SET = "descriptor_set.binpb"
MARKER_TEXT = """# Generated code: do not edit

Everything under `contracts/python/identity_platform_api/` is generated from
`protos/identity/` by `tools/contracts.py generate` with grpcio-tools {version}
(the `*.pyi` type stubs with mypy-protobuf {stubs_version}).
CI runs `tools/contracts.py check` and fails when this tree is stale.
"""


def _site_packages_with(relative: str) -> Path:
    for entry in map(Path, sys.path):
        if (entry / relative).is_file():
            return entry
    raise SystemExit(f"cannot find {relative} on sys.path: is googleapis-common-protos installed?")


def _stub_arguments(out_dir: Path) -> list[str]:
    """protoc arguments for mypy-protobuf's two plugins (installed beside this
    interpreter by the dev extra): `protoc-gen-mypy` writes the `*_pb2.pyi`,
    `protoc-gen-mypy_grpc` the `*_pb2_grpc.pyi`. The generated servicer bases
    are concrete (each RPC answers UNIMPLEMENTED), and so are their stubs."""
    plugins = (
        ("protoc-gen-mypy", "mypy_out", "quiet"),
        ("protoc-gen-mypy_grpc", "mypy_grpc_out", "quiet,generate_concrete_servicer_stubs"),
    )
    arguments = []
    for plugin, out, options in plugins:
        path = Path(sys.executable).parent / plugin
        if not path.is_file():
            raise SystemExit(f"cannot find {path}: is mypy-protobuf (the dev extra) installed?")
        arguments += [f"--plugin={plugin}={path}", f"--{out}={options}:{out_dir}"]
    return arguments


def _proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def _renamed(name: str) -> str:
    return (
        PYTHON_PACKAGE + "/" + name[len(PROTO_PREFIX) :] if name.startswith(PROTO_PREFIX) else name
    )


def _remapped_descriptor_set(includes: list[str], files: list[str], out: Path) -> None:
    """Compile the contracts into a descriptor set whose own files are named
    `identity_platform_api/...` (dependencies renamed alike)."""
    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc

    compiled = out.with_suffix(".original.binpb")
    code = protoc.main(
        [
            "grpc_tools.protoc",
            *includes,
            f"--descriptor_set_out={compiled}",
            "--include_imports",
            "--include_source_info",
            *files,
        ]
    )
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(compiled.read_bytes())
    for file in descriptor_set.file:
        file.name = _renamed(file.name)
        file.dependency[:] = [_renamed(d) for d in file.dependency]
    out.write_bytes(descriptor_set.SerializeToString())
    compiled.unlink()


def _generate_into(out_dir: Path) -> None:
    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc

    package_dir = out_dir / PYTHON_PACKAGE
    package_dir.mkdir(parents=True, exist_ok=True)
    well_known = Path(protoc.__file__).parent / "_proto"
    googleapis = _site_packages_with(GOOGLE_DEPS[0])
    files = [str(p.relative_to(PROTO_ROOT)) for p in _proto_files()]
    remapped = out_dir / "contracts.binpb"
    _remapped_descriptor_set(
        [f"-I{PROTO_ROOT}", f"-I{googleapis}", f"-I{well_known}"], files, remapped
    )
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"--descriptor_set_in={remapped}",
            f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            *_stub_arguments(out_dir),
            *(_renamed(f) for f in files),
        ]
    )
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    # The gateway's comments: our own files only, with source info.
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(remapped.read_bytes())
    own = descriptor_pb2.FileDescriptorSet(
        file=[f for f in descriptor_set.file if f.name.startswith(PYTHON_PACKAGE + "/")]
    )
    (package_dir / DESCRIPTOR_SET).write_bytes(own.SerializeToString(deterministic=True))
    remapped.unlink()
    # Regular packages (not namespace packages), so that tools walking the
    # tree, and installs of the wheel, see every module.
    for directory in [package_dir, *(p for p in package_dir.rglob("*") if p.is_dir())]:
        (directory / "__init__.py").write_text("")
    marker = package_dir / "README.md"
    marker.write_text(
        MARKER_TEXT.format(
            version=importlib.metadata.version("grpcio-tools"),
            stubs_version=importlib.metadata.version("mypy-protobuf"),
        )
    )


def _generated_files(root: Path) -> set[Path]:
    package = root / PYTHON_PACKAGE
    if not package.exists():
        return set()
    return {
        p.relative_to(root)
        for p in package.rglob("*")
        if p.is_file()
        and (
            p.name.endswith(GENERATED_SUFFIXES)
            or p.name in ("README.md", "__init__.py", DESCRIPTOR_SET)
        )
    }


def generate() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_root = Path(tmp)
        _generate_into(tmp_root)
        if GENERATED_PACKAGE.exists():
            shutil.rmtree(GENERATED_PACKAGE)
        shutil.copytree(tmp_root / PYTHON_PACKAGE, GENERATED_PACKAGE)
    print(
        f"generated {len(_generated_files(OUTPUT_ROOT))} files "
        f"under {GENERATED_PACKAGE.relative_to(ROOT)}"
    )


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_root = Path(tmp)
        _generate_into(tmp_root)
        fresh = _generated_files(tmp_root)
        current = _generated_files(OUTPUT_ROOT)
        missing = sorted(fresh - current)
        extra = sorted(current - fresh)
        changed = sorted(
            p
            for p in fresh & current
            if not filecmp.cmp(tmp_root / p, OUTPUT_ROOT / p, shallow=False)
        )
    problems = (
        [f"missing: {p}" for p in missing]
        + [f"stale file: {p}" for p in extra]
        + [f"out of date: {p}" for p in changed]
    )
    if problems:
        print(
            "generated contracts are stale; run `tools/contracts.py generate` and commit:",
            file=sys.stderr,
        )
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
    listed = subprocess.run(
        ["git", "ls-tree", "-d", against, "protos"], cwd=ROOT, capture_output=True, text=True
    )
    if listed.returncode != 0 or not listed.stdout.strip():
        print(f"no contracts at {against}: nothing to compare")
        return 0
    deps()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        old.mkdir()
        archive = subprocess.run(
            ["git", "archive", against, "protos", "buf.yaml"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
