"""tools/dev's set-up, run against a stand-in interpreter in a scratch copy of
the repository's set-up files: which Python it accepts, when it rebuilds the
venv, what `up` and `test` install, and which tests `test LAYER` runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

# Answers `-c` with its VERSION file; `-m venv DIR` makes DIR/bin/python (a copy
# of itself and its VERSION) and DIR/bin/identity; everything else is logged.
FAKE_PYTHON = """#!/usr/bin/env bash
here="$(cd "$(dirname "$0")" && pwd)"
case "$1" in
  -c) cat "$here/VERSION" ;;
  -m)
    case "$2" in
      venv)
        mkdir -p "$3/bin"
        cp "$0" "$3/bin/python"
        cp "$here/VERSION" "$3/bin/VERSION"
        printf '#!/usr/bin/env bash\\necho "identity $*" >>"$FAKE_LOG"\\n' >"$3/bin/identity"
        chmod +x "$3/bin/identity"
        echo "venv" >>"$FAKE_LOG" ;;
      *) shift; echo "$*" >>"$FAKE_LOG" ;;
    esac ;;
  *) echo "run $*" >>"$FAKE_LOG" ;;
esac
"""


def fake_python(directory: Path, version: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    python = directory / "python3.11"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    (directory / "VERSION").write_text(version + "\n")
    return python


# Stands in for npm: logs its arguments; `npm ci` makes node_modules as npm would.
FAKE_NPM = """#!/usr/bin/env bash
echo "npm $*" >>"$FAKE_LOG"
if [[ "$1" == ci ]]; then mkdir -p node_modules; fi
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / "tools").mkdir(parents=True)
    (root / "sdk" / "web").mkdir(parents=True)
    (root / "tests" / "support" / "openapi_ts").mkdir(parents=True)
    for name in (
        "tools/dev",
        "tools/python.sh",
        "pyproject.toml",
        "requirements.lock",
        "sdk/web/package-lock.json",
        "tests/support/openapi_ts/package-lock.json",
    ):
        shutil.copy2(REPO_ROOT / name, root / name)
    bin_dir = root / "fake-bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text(FAKE_NPM)
    (bin_dir / "npm").chmod(0o755)
    return root


def dev(root: Path, *args: str, python: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "IDENTITY_PYTHON"}
    env["FAKE_LOG"] = str(root / "calls.log")
    env["PATH"] = f"{root / 'fake-bin'}{os.pathsep}{env['PATH']}"
    if python is not None:
        env["IDENTITY_PYTHON"] = str(python)
    return subprocess.run(
        ["bash", str(root / "tools" / "dev"), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def calls(root: Path) -> list[str]:
    log = root / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def test_a_missing_interpreter_is_one_clear_line(checkout: Path) -> None:
    result = dev(checkout, "up", python=checkout / "no-such-python")
    assert result.returncode != 0
    assert result.stderr.splitlines() == [
        f"error: this project needs Python 3.11 and '{checkout / 'no-such-python'}' was not "
        "found: install python3.11 and python3.11-venv, or set IDENTITY_PYTHON to a Python "
        "3.11 interpreter"
    ]
    assert not (checkout / ".venv").exists()


def test_another_python_version_is_refused(checkout: Path, tmp_path: Path) -> None:
    python = fake_python(tmp_path / "py312", "3.12")
    result = dev(checkout, "up", python=python)
    assert result.returncode != 0
    assert f"{python} is Python 3.12 but this project supports Python 3.11 only" in result.stderr
    assert not (checkout / ".venv").exists()


def test_up_installs_the_runtime_only_and_test_adds_the_test_tools(
    checkout: Path, tmp_path: Path
) -> None:
    python = fake_python(tmp_path / "py311", "3.11")
    first = dev(checkout, "up", "--verbose", python=python)
    assert first.returncode == 0, first.stderr
    log = calls(checkout)
    assert log[0] == "venv"
    assert "pip install --progress-bar off -c requirements.lock -e ." in log
    assert not any("[dev]" in line for line in log)
    assert log[-1] == "identity up --verbose"
    assert "installing the project and its pinned runtime dependencies: done" in first.stderr

    # Installed and unchanged: `up` goes straight to the command.
    assert dev(checkout, "up", python=python).returncode == 0
    assert calls(checkout) == ["identity up"]

    # `test LAYER` adds the dev extra once, then runs only that layer's tests.
    tested = dev(checkout, "test", "unit", "chart", "-k", "name", python=python)
    assert tested.returncode == 0, tested.stderr
    log = calls(checkout)
    assert "pip install --progress-bar off -c requirements.lock -e .[dev]" in log
    assert "run tools/test_database.py" in log
    # The web SDK's toolchain is installed from its lock once and built for the browser tests.
    assert "npm ci --no-audit --no-fund --ignore-scripts --loglevel=error" in log
    assert log[-2:] == ["npm run --silent build", "pytest tests/unit tests/chart -k name"]
    assert dev(checkout, "test", "e2e", python=python).returncode == 0
    assert calls(checkout) == [
        "run tools/test_database.py",
        "npm run --silent build",
        "pytest tests/e2e",
    ]
    # The dev install covers `up` too.
    assert dev(checkout, "up", python=python).returncode == 0
    assert calls(checkout) == ["identity up"]

    # A changed lock means a reinstall at the level asked for.
    with (checkout / "requirements.lock").open("a") as lock:
        lock.write("extra-package==1.0\n")
    assert dev(checkout, "up", python=python).returncode == 0
    log = calls(checkout)
    assert "pip install --progress-bar off -c requirements.lock -e ." in log
    assert not any("[dev]" in line for line in log)


def test_a_venv_made_with_another_python_is_rebuilt(checkout: Path, tmp_path: Path) -> None:
    python = fake_python(tmp_path / "py311", "3.11")
    fake_python(checkout / ".venv" / "bin", "3.10").rename(checkout / ".venv" / "bin" / "python")
    (checkout / ".venv" / ".installed-dev").write_text("anything\n")
    result = dev(checkout, "up", python=python)
    assert result.returncode == 0, result.stderr
    assert "was made with Python 3.10, not 3.11: rebuilding it" in result.stderr
    assert (checkout / ".venv" / "bin" / "VERSION").read_text() == "3.11\n"
    assert calls(checkout)[0] == "venv"


def test_the_usage_names_the_layers(checkout: Path) -> None:
    result = dev(checkout)
    assert result.returncode == 2
    assert "unit integration service e2e" in result.stdout
