"""tools/duplicates_check.py's informational count: a row is declaration-only
when both places of its named run hold nothing but decorators, class headers,
annotated class fields, docstrings, comments and blank lines."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

TOOL = Path(__file__).resolve().parents[2] / "tools" / "duplicates_check.py"

FIELDS = '''\
@dataclass(frozen=True)
class Alpha:
    """A value."""

    # The name, as given.
    name: str
    size: int = setting(
        3, "How many"
    )
'''
CODE = """\
def beta(name: str, size: int) -> str:
    total = size * 2
    return name * total
"""
MODULE_TABLE = """\
TABLE: dict[str, int] = {
    "a": 1,
}
"""


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("duplicates_check", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_rows_of_declarations_on_both_sides_are_counted(tmp_path: Path) -> None:
    for name, text in {"a.py": FIELDS, "b.py": FIELDS, "c.py": CODE, "d.py": MODULE_TABLE}.items():
        (tmp_path / name).write_text(text)
    report = "\n".join(
        [
            "4 pairs of places (4 files read), each sharing runs of 6 or more lines",
            "D1 a.py:1-9 ~ b.py:1-9 shape",
            "D2 a.py:1-3 ~ c.py:1-3 shape (+1 more run)",
            "D3 a.py:5-7 ~ d.py:1-3 shape",
            "D4 a.py:2-4 ~ b.py:6-9 shape boilerplate",
        ]
    )
    assert _tool().declaration_only(report, root=tmp_path) == 2
