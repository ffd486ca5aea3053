"""The README's configuration table is generated from the settings classes and stays current."""

from __future__ import annotations

import importlib.util

from tests.support import REPO_ROOT


def test_readme_configuration_table_matches_the_settings_classes() -> None:
    spec = importlib.util.spec_from_file_location(
        "config_table", REPO_ROOT / "tools" / "config_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    readme = (REPO_ROOT / "README.md").read_text()
    current = readme.split(module.START, 1)[1].split(module.END, 1)[0].strip()
    assert current == module.table().strip(), (
        "README configuration table is stale: run tools/config_table.py --write"
    )
