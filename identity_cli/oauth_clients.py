"""`identity oauth-clients create|revoke`: Face Match's OAuth clients by CLI.

The same clients the route `POST /api/oauth/clients` makes (for an
organisation that has an internal key), for operators on a machine that can
reach the database. The secret is printed once (stdout), the client id on
stderr; the pepper must be the one face-match runs with. Both are audited
(oauth_client.create / oauth_client.revoke) with the operator's CLI as the
actor; face-match's audit relay appends the entries.
"""

from __future__ import annotations

import argparse
import sys

from identity_cli.common import (
    CLI_ACTOR,
    ServiceSecret,
    command_group,
    database_session,
    org_action,
)
from identity_cli.errors import CliError
from identity_store.types import utcnow

PEPPER_FILE = "oauth-client-pepper"
PEPPER = ServiceSecret(
    "FACE_MATCH_OAUTH_CLIENT_PEPPER", PEPPER_FILE, "OAuth client pepper", "face-match"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = command_group(subparsers, "oauth-clients", "Face Match OAuth clients")
    create = org_action(sub, "create", run_create, "create a client and print its secret once")
    create.add_argument("--name", required=True)
    PEPPER.add_option(create)
    revoke = org_action(sub, "revoke", run_revoke, "revoke a client")
    revoke.add_argument("--client-id", required=True)


def run_create(args: argparse.Namespace) -> int:
    from services.face_match.oauth import new_client
    from services.kyc_tier import models

    pepper = PEPPER.read(args)
    with database_session(args) as session:
        if session.get(models.Org, args.org) is None:
            raise CliError(f"no organisation {args.org!r}")
        view, secret = new_client(session, args.org, args.name, pepper, utcnow(), CLI_ACTOR)
    print(f"oauth client {view.client_id} for {args.org}; its secret:", file=sys.stderr)
    print(f"client_id={view.client_id}")
    print(f"client_secret={secret}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    from identity_runtime.errors import NotFound
    from services.face_match.oauth import revoke_client

    try:
        with database_session(args) as session:
            view = revoke_client(session, args.org, args.client_id, utcnow(), CLI_ACTOR)
    except NotFound:
        raise CliError(f"no OAuth client {args.client_id!r} in {args.org!r}") from None
    print(f"revoked {view.client_id}")
    return 0
