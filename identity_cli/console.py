"""`identity console-users create`: the first analysts and admins of an
organisation (later ones can be added by its admins through the API,
`POST /api/identity/console-users`); `disable` (ends the user's sessions at
once) and `set-roles`, as the API's admin routes do, audited the same way
and refusing to leave the organisation without an active admin.

The password is read from standard input with `--password-stdin`, else
asked for on the terminal; it is hashed with argon2id and never printed.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from identity_cli.common import command_group, operator_session, org_action
from identity_cli.errors import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    users_sub = command_group(subparsers, "console-users", "analyst console users")
    create = org_action(users_sub, "create", run_create, "create a console user of an organisation")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True, help="display name")
    create.add_argument(
        "--role", action="append", choices=["analyst", "admin"], help="repeatable; default analyst"
    )
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    disable = org_action(
        users_sub, "disable", run_disable, "disable a console user and end their sessions"
    )
    disable.add_argument("--user", required=True, help="the user id (usr_...)")
    roles = org_action(users_sub, "set-roles", run_set_roles, "replace a console user's roles")
    roles.add_argument("--user", required=True, help="the user id (usr_...)")
    roles.add_argument("--role", action="append", required=True, choices=["analyst", "admin"])


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise CliError("no terminal to ask for the password: use --password-stdin")
        password = getpass.getpass("password: ")
    if not password:
        raise CliError("an empty password: give one of at least 12 characters")
    return password


def run_create(args: argparse.Namespace) -> int:
    from services.kyc_tier.console_users import add_user, check_new_user, hash_password

    password = _password(args)
    checked = check_new_user(args.email, args.name, tuple(args.role or ("analyst",)), password)
    hashed = hash_password(password)
    with operator_session(args) as session:
        user = add_user(session, args.org, checked, hashed)
    print(f"console user {user.user_id} ({', '.join(user.roles)}) of {user.org_id}")
    return 0


def run_disable(args: argparse.Namespace) -> int:
    from identity_store.types import utcnow
    from services.kyc_tier.console_admin import disable_user

    with operator_session(args) as session:
        user, revoked = disable_user(session, args.org, args.user, utcnow())
    print(f"console user {user.user_id} of {user.org_id} disabled; {revoked} session(s) ended")
    return 0


def run_set_roles(args: argparse.Namespace) -> int:
    from services.kyc_tier.console_admin import set_user_roles

    with operator_session(args) as session:
        user = set_user_roles(session, args.org, args.user, tuple(args.role))
    print(f"console user {user.user_id} of {user.org_id}: {', '.join(user.roles)}")
    return 0
