"""`identity migrate`: bring every service's tables (or one service's) to the latest schema."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from identity_cli.common import add_database_options, database_url
from identity_store.db import make_url_safe_for_display


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="apply database migrations of every service, or of one (idempotent)",
        description=(
            "Each service that stores data (kyc-tier, liveness, matching, audit) has its "
            "own migration history and version table; one database may host them all. "
            "A database migrated by the old single history is adopted first."
        ),
    )
    add_database_options(parser)
    parser.add_argument(
        "--service", metavar="NAME", help="migrate only this service's tables (e.g. matching)"
    )
    parser.add_argument(
        "--revision",
        help="target revision of the --service's history (default: its head)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from identity_cli import schema
    from identity_store import migrate

    # The arguments first: a refused command leaves nothing behind (the
    # default database's folder is made when its URL is).
    if args.revision and not args.service:
        print(
            "identity migrate: --revision needs --service (revisions are per service)",
            file=sys.stderr,
        )
        return 2
    try:
        owners = [schema.history(args.service).owner] if args.service else None
    except ValueError as exc:
        print(f"identity migrate: {exc}", file=sys.stderr)
        return 2
    url = database_url(args)
    shown = make_url_safe_for_display(url)
    try:
        adopted = schema.adopt_single_history(url)
    except schema.UnknownSchema as exc:
        print(f"identity migrate: {shown}: {exc}", file=sys.stderr)
        return 2
    if adopted is not None:
        print(
            f"database {shown}: adopted the single-history schema at {adopted}; "
            "every service's tables now have their own history"
        )
    if args.revision:
        owned = schema.history(args.service)
        before = migrate.current_revision(url, owned)
        upgrade_to(url, owned, args.revision)
        steps = [schema.Step(owned.owner, before, migrate.current_revision(url, owned))]
    else:
        steps = schema.migrate_all(url, owners)
    for step in steps:
        print(f"database {shown}: {step.owner} {step.before or 'empty'} -> {step.after}")
    return grant_roles(url, shown, [schema.history(step.owner) for step in steps])


def upgrade_to(url: str, history: Any, revision: str) -> None:
    """Upgrade `history` to `revision`; a revision the history does not have
    (or one behind the database's) is a user error: alembic says which,
    before it changes anything."""
    from alembic.util import CommandError

    from identity_cli.errors import CliError
    from identity_store import migrate

    try:
        migrate.upgrade(url, history, revision)
    except CommandError as exc:
        raise CliError(
            f"--revision {revision}: {exc} (in the {history.owner} history, "
            f"whose head is {migrate.head_revision(history)})"
        ) from exc


def grant_roles(url: str, shown: str, histories: list[Any]) -> int:
    """Grant each history's role its privileges when IDENTITY_MIGRATE_GRANTS names
    the roles (PostgreSQL only; identity_store.grants)."""
    from identity_store import grants, migrate

    text = os.environ.get(grants.GRANTS_ENV, "")
    if not text:
        return 0
    try:
        roles = grants.parse_roles(text)
    except ValueError as exc:
        print(f"identity migrate: {exc}", file=sys.stderr)
        return 2
    with migrate.migration_connection(url) as connection:
        if connection.dialect.name != "postgresql":
            print(f"identity migrate: {grants.GRANTS_ENV} ignored (roles need PostgreSQL)")
            return 0
        for history in histories:
            role = grants.role_for(history, roles)
            if role:
                grants.apply(connection, history, role)
                print(f"database {shown}: {history.owner} tables granted to {role}")
    return 0
