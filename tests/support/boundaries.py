"""Which code may depend on which: imports between layers and services, and
table references across owners, read from the source (ast), not from grep.

Layers point one way: the generated contracts and `libs/` at the bottom,
`services/` and `gateway/` above them, `identity_cli/` (the command line) on
top. Each service owns its tables (`__tablename__` in its code); no service
imports another service's code, and none names another service's table in a
query, a table construct, a foreign key or a migration.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Calls whose string arguments name tables ("orgs", "orgs.org_id"): SQLAlchemy
# constructs and textual fragments, and Alembic operations.
TABLE_CALLS = frozenset(
    {
        "text",
        "column",
        "literal_column",
        "select_from",
        "ForeignKey",
        "ForeignKeyConstraint",
        "Table",
        "table",
        "create_table",
        "drop_table",
        "rename_table",
        "batch_alter_table",
        "add_column",
        "drop_column",
        "alter_column",
        "create_index",
        "drop_index",
        "create_foreign_key",
        "create_unique_constraint",
        "drop_constraint",
        "bulk_insert",
    }
)
# A table named in SQL text: FROM t, JOIN t, INTO t, UPDATE t, TABLE t.
SQL_TABLE = re.compile(r"\b(?:from|join|into|update|table)\s+[\"'`]?(\w+)", re.IGNORECASE)
DYNAMIC_IMPORTS = frozenset({"import_module", "__import__"})


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.detail}"


@dataclass(frozen=True)
class SourceFile:
    path: Path
    relative: str
    # Dotted module name ("services.matching.engine", "identity_store.db").
    module: str
    tree: ast.Module

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"

    @property
    def area(self) -> str:
        """'services.<name>', 'libs', 'gateway' or 'identity_cli'."""
        top = self.relative.split("/")
        if top[0] == "services" and len(top) > 2:
            return f"services.{top[1]}"
        return top[0]


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[0] == "libs":
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def source_files(root: Path) -> Iterator[SourceFile]:
    for area in ("services", "libs", "gateway", "identity_cli"):
        for path in sorted((root / area).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            yield SourceFile(
                path,
                path.relative_to(root).as_posix(),
                _module_name(root, path),
                ast.parse(path.read_text(), str(path)),
            )


def _resolve(file: SourceFile, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = file.module.split(".") if file.is_package else file.module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(file: SourceFile) -> Iterator[tuple[int, str]]:
    """(line, module) for every import, at any depth, relative ones resolved;
    `from a import b` yields a and a.b (b may be a module); import_module("x")
    with a literal name yields x."""
    for node in ast.walk(file.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(file, node)
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Call) and _call_name(node) in DYNAMIC_IMPORTS:
            if node.args and isinstance(node.args[0], ast.Constant):
                if isinstance(node.args[0].value, str):
                    yield node.lineno, node.args[0].value


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def import_violations(file: SourceFile) -> Iterator[Violation]:
    area = file.area
    for line, module in imports(file):
        rule = None
        if area.startswith("services."):
            if _within(module, "services") and module != "services" and not _within(module, area):
                rule = "a service imports another service"
            elif _within(module, "gateway") or _within(module, "identity_cli"):
                rule = "a service imports a layer above it"
        elif area == "libs":
            if any(_within(module, top) for top in ("services", "gateway", "identity_cli")):
                rule = "libs/ imports a layer above it"
        elif area == "gateway":
            if _within(module, "services"):
                rule = "the gateway imports a service's internals (contracts and libs only)"
            elif _within(module, "identity_cli"):
                rule = "the gateway imports the command line above it"
        if rule:
            yield Violation(file.relative, line, rule, module)


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _strings(node: ast.AST) -> Iterator[str]:
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            yield child.value


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes (prose, not queries)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def declared_tables(file: SourceFile) -> Iterator[tuple[int, str]]:
    """(line, name) of every `__tablename__ = "name"` in the file."""
    for node in ast.walk(file.tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if "__tablename__" in targets and isinstance(node.value.value, str):
                yield node.lineno, node.value.value


def table_references(file: SourceFile) -> Iterator[tuple[int, str]]:
    """(line, table) for every table the code names: in a SQLAlchemy construct
    or Alembic operation, or in SQL text."""
    prose = _docstrings(file.tree)
    for node in ast.walk(file.tree):
        if isinstance(node, ast.Call) and _call_name(node) in TABLE_CALLS:
            for text in _strings(node):
                yield node.lineno, text.split(".")[0]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in prose:
                for match in SQL_TABLE.finditer(node.value):
                    yield node.lineno, match.group(1)


def owners(files: list[SourceFile]) -> tuple[dict[str, str], list[Violation]]:
    """Each table's owning service, from the services' declarations."""
    owner: dict[str, str] = {}
    problems = []
    for file in files:
        for line, table in declared_tables(file):
            if not file.area.startswith("services."):
                problems.append(
                    Violation(file.relative, line, "only services declare tables", table)
                )
            elif owner.setdefault(table, file.area) != file.area:
                problems.append(
                    Violation(
                        file.relative,
                        line,
                        "a table declared by two services",
                        f"{table} (also {owner[table]})",
                    )
                )
    return owner, problems


def check(root: Path) -> list[Violation]:
    files = list(source_files(root))
    owner, problems = owners(files)
    for file in files:
        problems.extend(import_violations(file))
        if not file.area.startswith("services."):
            continue
        for line, table in table_references(file):
            if owner.get(table, file.area) != file.area:
                problems.append(
                    Violation(
                        file.relative,
                        line,
                        "a service names another service's table",
                        f"{table} (owned by {owner[table]})",
                    )
                )
    return problems
