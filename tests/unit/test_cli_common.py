"""The CLI's shared pieces: where a pepper comes from, how actions are declared."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from identity_cli.common import ServiceSecret, command_group, database_action, org_action
from identity_cli.errors import CliError
from identity_cli.main import command_name

PEPPER = ServiceSecret("TEST_PEPPER", "test-pepper", "test pepper", "the test service")


def _args(tmp_path: Path, pepper: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(pepper=pepper, data_dir=str(tmp_path))


def test_pepper_prefers_the_option_then_the_environment_then_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "test-pepper").write_text("from-file\n")
    monkeypatch.setenv("TEST_PEPPER", "from-env")
    assert PEPPER.read(_args(tmp_path, "from-option")) == "from-option"
    assert PEPPER.read(_args(tmp_path)) == "from-env"
    monkeypatch.delenv("TEST_PEPPER")
    assert PEPPER.read(_args(tmp_path)) == "from-file"


def test_no_pepper_is_an_error_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_PEPPER", raising=False)
    with pytest.raises(CliError, match="no test pepper: pass --pepper or set TEST_PEPPER"):
        PEPPER.read(_args(tmp_path))
    assert not (tmp_path / "secrets").exists()


def test_actions_carry_their_handler_options_and_name() -> None:
    def handler(args: argparse.Namespace) -> int:
        return 0

    parser = argparse.ArgumentParser(prog="identity")
    commands = parser.add_subparsers(dest="command")
    actions = command_group(commands, "test-things", "things")
    PEPPER.add_option(org_action(actions, "create", handler, "create a thing"))
    database_action(actions, "list", handler, "list the things")

    created = parser.parse_args(["test-things", "create", "--org", "o1", "--pepper", "p"])
    assert (created.handler, created.org, created.pepper) == (handler, "o1", "p")
    assert created.database_url is None and created.data_dir is None
    assert command_name(created) == "identity test-things create"
    listed = parser.parse_args(["test-things", "list", "--database-url", "sqlite://"])
    assert listed.database_url == "sqlite://" and not hasattr(listed, "org")
    with pytest.raises(SystemExit):
        parser.parse_args(["test-things", "create"])  # --org is required
