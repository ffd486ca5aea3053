"""The CLI's shared pieces: where a pepper comes from, how actions are declared."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from identity_cli.common import ServiceSecret, command_group, database_action, org_action
from identity_cli.errors import CliError, Parser
from identity_cli.main import command_name

PEPPER = ServiceSecret("TEST_PEPPER", "test-pepper", "test pepper", "the test service")


def _args(tmp_path: Path, pepper_file: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(pepper_file=pepper_file, data_dir=str(tmp_path))


def test_pepper_prefers_the_option_then_the_environment_then_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "test-pepper").write_text("from-file\n")
    monkeypatch.setenv("TEST_PEPPER", "from-env")
    option = tmp_path / "pepper-file"
    option.write_text("from-option\n")
    assert PEPPER.read(_args(tmp_path, str(option))) == "from-option"
    assert PEPPER.read(_args(tmp_path)) == "from-env"
    monkeypatch.delenv("TEST_PEPPER")
    assert PEPPER.read(_args(tmp_path)) == "from-file"


def test_no_pepper_is_an_error_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_PEPPER", raising=False)
    with pytest.raises(CliError, match="no test pepper: pass --pepper-file or set TEST_PEPPER"):
        PEPPER.read(_args(tmp_path))
    assert not (tmp_path / "secrets").exists()


def test_actions_carry_their_handler_options_and_name() -> None:
    def handler(args: argparse.Namespace) -> int:
        return 0

    parser = Parser(prog="identity")
    commands = parser.add_subparsers(dest="command")
    actions = command_group(commands, "test-things", "things")
    PEPPER.add_option(org_action(actions, "create", handler, "create a thing"))
    database_action(actions, "list", handler, "list the things")

    created = parser.parse_args(["test-things", "create", "--org", "o1", "--pepper-file", "p"])
    assert (created.handler, created.org, created.pepper_file) == (handler, "o1", "p")
    with pytest.raises(SystemExit):  # a secret is never a command-line value
        parser.parse_args(["test-things", "create", "--org", "o1", "--pepper", "p"])
    assert created.database_url is None and created.data_dir is None
    assert command_name(created) == "identity test-things create"
    listed = parser.parse_args(["test-things", "list", "--database-url", "sqlite://"])
    assert listed.database_url == "sqlite://" and not hasattr(listed, "org")
    with pytest.raises(SystemExit):
        parser.parse_args(["test-things", "create"])  # --org is required


def test_an_unreadable_or_empty_pepper_file_is_an_error_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="--pepper-file: cannot read"):
        PEPPER.read(_args(tmp_path, str(tmp_path / "missing")))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(CliError, match="--pepper-file: .* is empty"):
        PEPPER.read(_args(tmp_path, str(empty)))


@pytest.mark.parametrize(
    "extra", [["--pepper", "s3cret-pepper-value"], ["--pepper=s3cret-pepper-value"]]
)
def test_an_unknown_option_is_named_without_its_value(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Re-probe 6: `--pepper SECRET` (an option that takes files now) was
    refused with the secret in the error line, which CI and job logs keep."""
    parser = Parser(prog="identity")
    actions = command_group(parser.add_subparsers(dest="command"), "test-things", "things")
    PEPPER.add_option(org_action(actions, "create", lambda args: 0, "create a thing"))
    with pytest.raises(SystemExit) as refused:
        parser.parse_args(["test-things", "create", "--org", "o1", *extra])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --pepper" in err and "s3cret" not in err
