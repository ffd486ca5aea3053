"""Layers point one way and each service keeps to its own tables: checked on
the repository's source, and the checker itself shown to catch each kind of
violation planted in a scratch tree (so this test can fail)."""

from __future__ import annotations

from pathlib import Path

from tests.support import boundaries

REPO_ROOT = Path(__file__).resolve().parents[2]

OWN_MODELS = """
class Alpha(Base):
    __tablename__ = "alpha_rows"
"""
# Planted files and the one violation each must raise.
PLANTED = {
    "services/beta/imports_models.py": (
        "from services.alpha import models\n",
        "a service imports another service",
    ),
    "services/beta/imports_package.py": (
        "from services import alpha\n",
        "a service imports another service",
    ),
    "services/beta/relative.py": (
        "from ..alpha import models\n",
        "a service imports another service",
    ),
    "services/beta/lazy.py": (
        "def read():\n    import services.alpha.models\n",
        "a service imports another service",
    ),
    "services/beta/dynamic.py": (
        'import importlib\nimportlib.import_module("services.alpha.models")\n',
        "a service imports another service",
    ),
    "services/beta/up.py": (
        "from identity_cli import schema\n",
        "a service imports a layer above it",
    ),
    "services/beta/gw.py": ("import gateway.app\n", "a service imports a layer above it"),
    "services/beta/sql.py": (
        'import sqlalchemy as sa\nQUERY = sa.text("SELECT id FROM alpha_rows WHERE x = 1")\n',
        "a service names another service's table",
    ),
    "services/beta/fstring.py": (
        'def q(v):\n    return f"update alpha_rows set a = {v}"\n',
        "a service names another service's table",
    ),
    "services/beta/fragment.py": (
        'import sqlalchemy as sa\nQ = sa.select(sa.text("1")).select_from(sa.text("alpha_rows"))\n',
        "a service names another service's table",
    ),
    "services/beta/fk.py": (
        'from sqlalchemy import ForeignKey\nFK = ForeignKey("alpha_rows.id")\n',
        "a service names another service's table",
    ),
    "services/beta/core.py": (
        'import sqlalchemy as sa\nT = sa.table("alpha_rows", sa.column("id"))\n',
        "a service names another service's table",
    ),
    "services/beta/migrations/versions/0002_drop.py": (
        'from alembic import op\n\ndef upgrade():\n    op.drop_table("alpha_rows")\n',
        "a service names another service's table",
    ),
    "services/beta/duplicate.py": (
        'class Copy:\n    __tablename__ = "alpha_rows"\n',
        "a table declared by two services",
    ),
    "libs/lib_x/uses_service.py": (
        "from services.alpha import models\n",
        "libs/ imports a layer above it",
    ),
    "libs/lib_x/uses_cli.py": ("import identity_cli.main\n", "libs/ imports a layer above it"),
    "libs/lib_x/uses_gateway.py": ("from gateway import app\n", "libs/ imports a layer above it"),
    "libs/lib_x/tables.py": (
        'class Shared:\n    __tablename__ = "lib_rows"\n',
        "only services declare tables",
    ),
    "gateway/internals.py": (
        "from services.alpha.servicer import Servicer\n",
        "the gateway imports a service's internals (contracts and libs only)",
    ),
    "gateway/cli.py": ("import identity_cli\n", "the gateway imports the command line above it"),
}
# What stays allowed: a service's own models and SQL, libs and contracts
# everywhere, prose in docstrings, the command line above everything.
CLEAN = {
    "services/__init__.py": "",
    "services/alpha/__init__.py": "",
    "services/alpha/models.py": OWN_MODELS,
    "services/beta/__init__.py": "",
    "services/beta/models.py": 'class Beta(Base):\n    __tablename__ = "beta_rows"\n',
    "services/beta/store.py": (
        '"""Unlike the old code, nothing here reads from alpha_rows."""\n'
        "import sqlalchemy as sa\n"
        "from identity_store.db import Database\n"
        "from services.beta import models\n"
        "from . import models as same\n"
        'MINE = sa.text("SELECT id FROM beta_rows")\n'
    ),
    "libs/lib_x/__init__.py": "",
    "libs/lib_x/ok.py": "import sqlalchemy\nfrom identity_store import db\n",
    "gateway/__init__.py": "",
    "gateway/ok.py": (
        "from identity_platform_api.matching.v1 import matching_pb2\nimport identity_runtime\n"
    ),
    "identity_cli/__init__.py": "",
    "identity_cli/schema.py": (
        "from services.alpha import models\nfrom services.beta import models as b\n"
        'import sqlalchemy as sa\nX = sa.text("DROP TABLE alpha_rows")\n'
    ),
}


def _tree(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_repository_keeps_its_boundaries() -> None:
    violations = boundaries.check(REPO_ROOT)
    assert violations == [], "\n".join(str(v) for v in violations)


def test_every_service_table_has_one_owner_and_the_ownership_is_what_the_docs_say() -> None:
    owners, problems = boundaries.owners(list(boundaries.source_files(REPO_ROOT)))
    assert problems == []
    by_owner: dict[str, set[str]] = {}
    for table, owner in owners.items():
        by_owner.setdefault(owner, set()).add(table)
    assert by_owner["services.liveness"] == {"devices", "challenges", "used_nonces"}
    assert by_owner["services.matching"] == {"enrollments", "gallery_heads", "matching_data_keys"}
    assert by_owner["services.audit"] == {"audit_entries", "audit_chain_head", "audit_checkpoints"}
    assert {"orgs", "customers", "kyc_data_keys"} <= by_owner["services.kyc_tier"]


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    _tree(tmp_path, CLEAN)
    assert boundaries.check(tmp_path) == []


def test_each_planted_violation_is_caught(tmp_path: Path) -> None:
    _tree(tmp_path, CLEAN)
    _tree(tmp_path, {path: text for path, (text, _) in PLANTED.items()})
    found = {(v.path, v.rule) for v in boundaries.check(tmp_path)}
    expected = {(path, rule) for path, (_, rule) in PLANTED.items()}
    assert found == expected
