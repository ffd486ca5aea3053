"""User errors of the `identity` command: one line on stderr, exit status 2.

A command raises `CliError` for what the user can fix (a missing database,
an unknown file, a bad option value); errors from the libraries that mean
the same (bad settings, an unusable keyring, a refused domain value, a
database that cannot be reached or is not migrated) are turned into one line
here. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

import sqlalchemy.exc

from identity_crypto.keyring import KeyringError
from identity_runtime.errors import DomainError, Internal
from identity_runtime.settings import SettingsError

USER_ERROR = 2


class CliError(Exception):
    """Something the user can fix; the message says what and how."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not the usage block) and exit
    2, and no option abbreviated: `--pepper` must not quietly mean `--pepper-file`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(USER_ERROR, f"{self.prog}: {message} (see `{self.prog} --help`)\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            # Named by their options only: what follows an unknown option may
            # be a secret (`--pepper VALUE`), which stderr and CI logs keep.
            named = [extra.split("=", 1)[0] for extra in extras if extra.startswith("-")]
            shown = " ".join(named) if named else f"{len(extras)} positional value(s)"
            self.error(f"unrecognized arguments: {shown}")
        return parsed


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)


def _database_message(exc: sqlalchemy.exc.SQLAlchemyError) -> str:
    cause = getattr(exc, "orig", None) or exc
    text = _first_line(str(cause))
    missing_table = "no such table" in text or ("relation" in text and "does not exist" in text)
    if isinstance(exc, sqlalchemy.exc.IntegrityError):
        return f"the database refused the change: {text}"
    if missing_table:
        return f"the database is not migrated ({text}): run `identity migrate`"
    if isinstance(exc, sqlalchemy.exc.ArgumentError | sqlalchemy.exc.NoSuchModuleError):
        return f"not a usable database URL: {text}"
    return f"cannot use the database: {text}"


def user_message(exc: BaseException) -> str | None:
    """The one-line message for a user error, or None for a bug."""
    if isinstance(exc, CliError | KeyringError):
        return str(exc)
    if isinstance(exc, SettingsError):
        return "invalid configuration: " + "; ".join(exc.problems)
    # The operator is told what the database said (a service's callers are
    # only told it cannot be reached: identity_store.db).
    cause = exc.__cause__
    if isinstance(exc, DomainError) and isinstance(cause, sqlalchemy.exc.SQLAlchemyError):
        return _database_message(cause)
    if isinstance(exc, DomainError) and not isinstance(exc, Internal):
        return exc.message
    if isinstance(exc, sqlalchemy.exc.SQLAlchemyError):
        return _database_message(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return None


def report(command: str, exc: BaseException) -> int | None:
    """Print a user error as one line and return its exit status; None for a bug."""
    message = user_message(exc)
    if message is None:
        return None
    print(f"{command}: {_first_line(message)}", file=sys.stderr)
    return USER_ERROR
