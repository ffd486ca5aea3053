"""`identity face-match rotate-callback-secret`: rotate an organisation's Face
Match callback signing secret by CLI.

What `POST /api/face-match/callback-secret/rotate` does (RotateCallbackSecret,
services/face_match/callbacks.py), for operators on a machine that can reach
the database: a new random secret, printed once (stdout), the previous one
still signing for the overlap (`--overlap-seconds`, 0 the default), audited
as face_match.callback_secret_rotated with the operator's CLI as the actor;
face-match's audit relay appends the entry. The secret is stored sealed under
a key derived from FACE_MATCH_CALLBACK_SIGNING_KEY, which must be the one
face-match runs with.
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

SIGNING_KEY = ServiceSecret(
    "FACE_MATCH_CALLBACK_SIGNING_KEY",
    "face-match-callback-key",
    "Face Match callback signing key",
    "face-match",
    option="signing_key",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = command_group(subparsers, "face-match", "Face Match operations")
    rotate = org_action(
        sub,
        "rotate-callback-secret",
        run_rotate,
        "rotate the organisation's callback signing secret and print the new one once",
    )
    rotate.add_argument(
        "--overlap-seconds",
        type=int,
        default=0,
        help="how long the previous secret keeps signing (0: the default, 86400; at most 604800)",
    )
    SIGNING_KEY.add_option(rotate)


def run_rotate(args: argparse.Namespace) -> int:
    from identity_runtime import signing
    from identity_runtime.errors import InvalidArgument
    from services.face_match.callbacks import CallbackSecrets
    from services.kyc_tier import models

    try:
        signing.rotation_overlap(args.overlap_seconds)
    except InvalidArgument:
        raise CliError(
            f"--overlap-seconds: must be between 1 and {signing.MAX_OVERLAP_SECONDS} "
            "(0: the default)"
        ) from None
    key = SIGNING_KEY.read(args)
    with database_session(args) as session:
        if session.get(models.Org, args.org) is None:
            raise CliError(f"no organisation {args.org!r}")
        secret, expires = CallbackSecrets(key).rotate(
            session, args.org, CLI_ACTOR, args.overlap_seconds, utcnow()
        )
    print(
        f"callback signing secret of {args.org} rotated; the previous one signs until "
        f"{expires.isoformat()}; the new secret:",
        file=sys.stderr,
    )
    print(f"callback_signing_secret={secret}")
    print(f"previous_secret_expires_at={expires.isoformat()}")
    return 0
