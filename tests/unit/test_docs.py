"""The README's configuration table is generated from the settings classes and stays
current, and names every environment variable the code reads."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path
from typing import Any

from identity_runtime import mesh
from tests.support import REPO_ROOT


def config_table() -> Any:
    spec = importlib.util.spec_from_file_location(
        "config_table", REPO_ROOT / "tools" / "config_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_readme_configuration_table_matches_the_settings_classes() -> None:
    module = config_table()
    readme = (REPO_ROOT / "README.md").read_text()
    current = readme.split(module.START, 1)[1].split(module.END, 1)[0].strip()
    assert current == module.table().strip(), (
        "README configuration table is stale: run tools/config_table.py --write"
    )


# Variables of the shell and the OS, not the project's configuration.
STANDARD = {
    "PATH",
    "HOME",
    "PWD",
    "TMPDIR",
    "SECONDS",
    "BASH_SOURCE",
    "LC_ALL",
    "LD_LIBRARY_PATH",
    "EUID",
}
PY_READ = re.compile(
    r"""(?:environ\.get|getenv|environ\.setdefault)\(\s*["']([A-Z][A-Z0-9_]+)["']"""
    r"""|environ\[["']([A-Z][A-Z0-9_]+)["']\]"""
)
SHELL_READ = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)")
# `${NAME:-default}` reads the environment even where the script assigns NAME.
SHELL_READ_WITH_DEFAULT = re.compile(r"\$\{([A-Z][A-Z0-9_]*):?-")
SHELL_ASSIGNED = re.compile(r"(?:^|[\s;(])(?:local\s+|export\s+)?([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--", *patterns],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [REPO_ROOT / name for name in out.split("\0") if name]


def variables_read() -> dict[str, str]:
    """Every environment variable named literally in a read, with one file reading it."""
    found: dict[str, str] = {}
    for path in tracked("*.py"):
        for match in PY_READ.finditer(path.read_text()):
            found.setdefault(match.group(1) or match.group(2), str(path.relative_to(REPO_ROOT)))
    for path in tracked("tools/dev", "tools/lock", "tools/*.sh", "tools/envs/*.sh", ".ci/run"):
        text = path.read_text()
        assigned = set(SHELL_ASSIGNED.findall(text))
        defaulted = set(SHELL_READ_WITH_DEFAULT.findall(text))
        for name in (set(SHELL_READ.findall(text)) - assigned) | defaulted:
            found.setdefault(name, str(path.relative_to(REPO_ROOT)))
    return {k: v for k, v in found.items() if k not in STANDARD}


def test_every_variable_the_code_reads_is_in_the_readme_table() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, re.MULTILINE))
    # The shared fields are listed once (under capture-quality) and, as the
    # table says, exist for every service's prefix.
    documented |= {
        f"{service.env_prefix}_{field}"
        for service in mesh.SERVICES
        for field in config_table().shared_settings_fields()
    }
    read = variables_read()
    # The scan finds what it should (so an empty result cannot pass silently).
    assert {"IDENTITY_HOST", "IDENTITY_PYTHON", "IDENTITY_TEST_POSTGRES_URL", "CI"} <= set(read)
    missing = {name: where for name, where in read.items() if name not in documented}
    assert missing == {}, "add these to tools/config_table.py and run it with --write"


def documented_variables() -> set[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, re.MULTILINE))
    return documented | {
        f"{service.env_prefix}_{field}"
        for service in mesh.SERVICES
        for field in config_table().shared_settings_fields()
    }


# A setting as the docs name it: a service's or the gateway's prefix, then its field.
_PREFIXES = "|".join(["GATEWAY", "IDENTITY"] + [s.env_prefix for s in mesh.SERVICES])
DOC_SETTING = re.compile(rf"`((?:{_PREFIXES})_[A-Z0-9_]+)`")


# Names of that shape that are not settings: contract enum values, and a
# variable of a benchmark branch that did not land (docs/performance.md).
NOT_SETTINGS = {
    "FACE_MATCH_BAND_HIGH",
    "FACE_MATCH_BAND_MEDIUM",
    "FACE_MATCH_BAND_LOW",
    "KYC_TIER_BASIC",
    "IDENTITY_EVENT_LOOP",
}


def test_every_setting_the_docs_name_exists() -> None:
    """An operator following a runbook or a doc sets what it names: a name
    the platform does not read changes nothing (black-box probe 7, D18:
    the Face Match backlog runbook named FACE_MATCH_MAX_ATTEMPTS)."""
    documented = documented_variables() | NOT_SETTINGS
    named = {
        (match.group(1), str(path.relative_to(REPO_ROOT)))
        for path in tracked("docs/*.md", "docs/runbooks/*.md", "README.md")
        for match in DOC_SETTING.finditer(path.read_text())
        # `<PREFIX>_...` families and wildcards are patterns, not settings.
        if not match.group(1).endswith("_")
    }
    assert len(named) > 50  # the scan finds the docs' settings
    unknown = sorted((name, where) for name, where in named if name not in documented)
    assert unknown == []
