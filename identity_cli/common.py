"""Options shared by commands: where the data lives, which database, which keyring."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from identity_cli.errors import CliError
from identity_crypto.keyring import Keyring, KeyringError, load_keyring
from identity_runtime import context
from identity_store.db import SQLITE_FILE, Database, default_sqlite_url

DEFAULT_DATA_DIR = Path(".identity")
# The actor of what an operator does by CLI, in audit entries.
CLI_ACTOR = "system:identity-cli"


def data_dir(args: argparse.Namespace) -> Path:
    chosen = (
        getattr(args, "data_dir", None) or os.environ.get("IDENTITY_DATA_DIR") or DEFAULT_DATA_DIR
    )
    return Path(chosen).expanduser().resolve()


def chosen_url(args: argparse.Namespace) -> str | None:
    """The database URL named by --database-url or IDENTITY_DATABASE_URL (None:
    the data dir's embedded database)."""
    return _chosen_url(args)


def _chosen_url(args: argparse.Namespace) -> str | None:
    return getattr(args, "database_url", None) or os.environ.get("IDENTITY_DATABASE_URL")


def database_url(args: argparse.Namespace) -> str:
    """--database-url, else IDENTITY_DATABASE_URL, else the embedded SQLite file
    (its directory is created): for the commands that create a database
    (`identity up`, `identity migrate`)."""
    return _chosen_url(args) or default_sqlite_url(data_dir(args))


def existing_database_url(args: argparse.Namespace) -> str:
    """Like `database_url`, for commands that work on a database that must
    already exist: a SQLite file that is not there is an error, never created."""
    url = _chosen_url(args)
    if url is None:
        path = data_dir(args) / SQLITE_FILE
        where = f"no database at {path}"
    else:
        parsed = make_url(url)
        if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
            return url
        path = Path(parsed.database)
        where = f"no SQLite database at {path}"
    if not path.is_file():
        raise CliError(
            f"{where}: run `identity up` or `identity migrate` to create one, or point "
            "--database-url / IDENTITY_DATABASE_URL (or --data-dir) at yours"
        )
    return url or f"sqlite:///{path}"


def chosen_keyring(args: argparse.Namespace, variable: str, local_name: str, what: str) -> Keyring:
    """--keyring, else <variable>_FILE, else <variable> (inline JSON), else the
    one-machine run's file <data dir>/secrets/<local_name>."""
    if getattr(args, "keyring", None):
        return Keyring.from_file(Path(args.keyring))
    file = os.environ.get(f"{variable}_FILE")
    inline = os.environ.get(variable, "")
    if file or inline.strip():
        return load_keyring(Path(file) if file else None, inline, what)
    local = data_dir(args) / "secrets" / local_name
    if local.exists():
        return Keyring.from_file(local)
    raise KeyringError(f"no {what}: pass --keyring or set {variable}_FILE")


@dataclasses.dataclass(frozen=True)
class ServiceSecret:
    """A secret a service runs with (a pepper, a signing key) as commands find
    it: the file --<option>-file names, else the environment's `variable`,
    else the one `identity up` made in <data dir>/secrets/<local_name>. Never
    on the command line, where other local users read it (ps, /proc). Never a
    new one: what a command hashed or sealed with a secret `service` does not
    know would not verify or open there."""

    variable: str
    local_name: str
    what: str
    service: str
    # The option's name (`pepper`: --pepper-file).
    option: str = "pepper"

    @property
    def flag(self) -> str:
        return f"--{self.option.replace('_', '-')}-file"

    def add_option(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            self.flag,
            dest=f"{self.option}_file",
            metavar="PATH",
            help=f"a file holding the {self.what} (default: {self.variable}, else the data dir's)",
        )

    def read(self, args: argparse.Namespace) -> str:
        named = getattr(args, f"{self.option}_file", None)
        if named:
            return self._from_file(Path(named))
        secret = os.environ.get(self.variable, "")
        local = data_dir(args) / "secrets" / self.local_name
        if not secret and local.is_file():
            secret = local.read_text().strip()
        if not secret:
            raise CliError(
                f"no {self.what}: pass {self.flag} or set "
                f"{self.variable} (the value {self.service} runs with)"
            )
        return secret

    def _from_file(self, path: Path) -> str:
        try:
            secret = path.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"{self.flag}: cannot read {path}: {exc}") from None
        if not secret:
            raise CliError(f"{self.flag}: {path} is empty")
        return secret


def add_database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL (default: IDENTITY_DATABASE_URL, else SQLite in the data dir)",
    )
    parser.add_argument(
        "--data-dir",
        help="Directory of the embedded database and local secrets "
        "(default: IDENTITY_DATA_DIR, else ./.identity)",
    )


def command_group(
    commands: argparse._SubParsersAction, name: str, help: str
) -> argparse._SubParsersAction:
    """A command made of actions (`identity keys rotate`): the actions' parsers.
    Their destination ends in `_command`, which names the action in error
    lines (main.command_name)."""
    group = commands.add_parser(name, help=help)
    dest = name.replace("-", "_") + "_command"
    return group.add_subparsers(dest=dest, metavar="ACTION", required=True)


def database_action(
    actions: argparse._SubParsersAction,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    help: str,
) -> argparse.ArgumentParser:
    """The parser of an action that works on the database: the database
    options and its handler set; the caller adds the action's own arguments."""
    parser = actions.add_parser(name, help=help)
    add_database_options(parser)
    parser.set_defaults(handler=handler)
    return parser


def org_action(
    actions: argparse._SubParsersAction,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    help: str,
) -> argparse.ArgumentParser:
    """Like `database_action`, for an action on one organisation (`--org`)."""
    parser = database_action(actions, name, handler, help)
    parser.add_argument("--org", required=True, help="organisation id")
    return parser


@contextlib.contextmanager
def as_operator(org_id: str) -> Iterator[None]:
    """Audit entries queued by the command name the operator's CLI as the actor."""
    token = context.bind(
        context.CallContext(request_id=context.new_request_id(), org_id=org_id, actor=CLI_ACTOR)
    )
    try:
        yield
    finally:
        context.reset(token)


@contextlib.contextmanager
def database_session(args: argparse.Namespace) -> Iterator[Session]:
    """One transaction on the command's existing database (`existing_database_url`);
    the engine is disposed of afterwards."""
    database = Database(existing_database_url(args))
    try:
        with database.transaction() as session:
            yield session
    finally:
        database.dispose()


@contextlib.contextmanager
def operator_session(args: argparse.Namespace) -> Iterator[Session]:
    """`database_session` for an action on one organisation (`--org`), its audit
    entries naming the operator's CLI as the actor (`as_operator`)."""
    with database_session(args) as session, as_operator(args.org):
        yield session
