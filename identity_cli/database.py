"""`identity migrate`: bring the database to the latest schema."""

from __future__ import annotations

import argparse

from identity_cli.common import add_database_options, database_url
from identity_store import migrate
from identity_store.db import make_url_safe_for_display


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("migrate", help="apply database migrations (idempotent)")
    add_database_options(parser)
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    url = database_url(args)
    before = migrate.current_revision(url)
    migrate.upgrade(url, args.revision)
    after = migrate.current_revision(url)
    print(f"database {make_url_safe_for_display(url)}: {before or 'empty'} -> {after}")
    return 0
