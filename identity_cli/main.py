"""`identity`: the platform's command line.

Sub-commands live in modules of this package; each exposes
`register(subparsers)` and sets `handler` on its parser. Add a module to
COMMAND_MODULES to add a command. User errors (identity_cli.errors) end the
command with one line on stderr and exit status 2. Logs go to stderr: stdout
carries only what the command prints.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from identity_cli.errors import Parser, report
from identity_runtime import logs

COMMAND_MODULES = (
    "identity_cli.up",
    "identity_cli.database",
    "identity_cli.partners",
    "identity_cli.console",
    "identity_cli.customers",
    "identity_cli.oauth_clients",
    "identity_cli.face_match",
    "identity_cli.openapi",
    "identity_cli.evaluate",
    "identity_cli.keys",
    "identity_cli.audit",
    "identity_cli.retention",
    "identity_cli.breach",
    "identity_cli.pdp",
    "identity_cli.smoke",
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="identity", description="Identity Platform: KYC onboarding and step-up authentication"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def command_name(args: argparse.Namespace) -> str:
    """`identity keys status`, from the parsed sub-commands (for error lines)."""
    actions = [v for k, v in vars(args).items() if k.endswith("_command") and isinstance(v, str)]
    return " ".join(["identity", args.command, *actions])


def main(argv: list[str] | None = None) -> int:
    # Stdout is the command's output (the JSON of `retention sweep`, `keys
    # status`, ... that a cron job or `jq` reads); every log line, the
    # libraries' included, goes to stderr (structlog's default is stdout).
    logs.configure("identity", fmt="console", libraries_level="WARNING")
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        status = report(command_name(args), exc)
        if status is None:
            raise
        return status


if __name__ == "__main__":
    sys.exit(main())
