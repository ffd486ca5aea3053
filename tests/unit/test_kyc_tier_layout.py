"""kyc-tier stays in pieces a newcomer can read: modules of at most 300 lines,
classes of at most 200; the contract (protobuf, gRPC) only at the edge
(servicer, mapping, adapters, the composition root); servicers that only
convert and call a flow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

PACKAGE = REPO_ROOT / "services" / "kyc_tier"
# Migrations are schema history (a baseline states every table), not code to read.
MODULES = sorted(
    p for p in PACKAGE.rglob("*.py") if "migrations" not in p.relative_to(PACKAGE).parts
)
# Where the contract may appear: the edge, and the root that wires it.
EDGE = {
    "servicer.py",
    "console_servicer.py",
    "sdk_servicer.py",
    "org_servicer.py",
    "webhook_servicer.py",
    "service.py",
    "console_roles.py",  # its stage of the server chain
    "bootstrap.py",
    "mapping",
    "adapters",
}


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_modules_and_classes_are_short(path: Path) -> None:
    source = path.read_text()
    assert len(source.splitlines()) <= 300
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno is not None
            assert node.end_lineno - node.lineno + 1 <= 200, node.name


@pytest.mark.parametrize(
    "path", [p for p in MODULES if p.relative_to(PACKAGE).parts[0] not in EDGE], ids=_name
)
def test_the_core_knows_nothing_of_the_contract(path: Path) -> None:
    imports = _imports(ast.parse(path.read_text()))
    assert not {m for m in imports if m.startswith(("identity_platform_api", "grpc", "google"))}


@pytest.mark.parametrize(
    "module",
    [
        "servicer.py",
        "console_servicer.py",
        "sdk_servicer.py",
        "org_servicer.py",
        "webhook_servicer.py",
    ],
)
def test_servicers_hold_no_transaction_and_no_decision(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text())
    names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not names & {"database", "run", "transaction", "session"}
    branches = [n for n in ast.walk(tree) if isinstance(n, ast.If | ast.Try | ast.Dict)]
    assert branches == []


def test_an_audit_outcome_the_audit_service_would_refuse_is_refused_at_once() -> None:
    """Only success, denied and failed, and a `<kind>:<id>` subject, reach the
    audit chain (another entry is refused for good and stays in the outbox),
    so `outbox.record` refuses them before any write."""
    from services.kyc_tier import outbox

    class NoSession:
        def add(self, _: object) -> None:
            raise AssertionError("nothing may be written")

    for outcome in ("created", "failure", "rotated"):
        with pytest.raises(ValueError, match="success, denied, failed"):
            outbox.record(NoSession(), "org_x", "webhook.create", "webhook:whk_x", outcome)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="<kind>:<internal id>"):
        outbox.record(NoSession(), "org_x", "webhook.create", "whk_x", "success")  # type: ignore[arg-type]
