"""`identity`: the platform's command line.

Sub-commands live in modules of this package; each exposes
`register(subparsers)` and sets `handler` on its parser. Add a module to
COMMAND_MODULES to add a command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "identity_cli.up",
    "identity_cli.database",
    "identity_cli.partners",
    "identity_cli.openapi",
    "identity_cli.evaluate",
    "identity_cli.keys",
    "identity_cli.audit",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="identity", description="Identity Platform: KYC onboarding and step-up authentication"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return int(handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
