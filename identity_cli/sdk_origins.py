"""`identity orgs set-sdk-origins`: the web origins whose pages may use an
organisation's SDK session tokens (CORS). The same as the internal route
`PUT /api/identity/sdk-origins`; audited (`org.sdk_origins`)."""

from __future__ import annotations

import argparse

from identity_cli.common import operator_session, org_action
from identity_cli.errors import CliError
from identity_runtime.errors import DomainError


def register_into(orgs_sub: argparse._SubParsersAction) -> None:
    parser = org_action(
        orgs_sub,
        "set-sdk-origins",
        run_set_sdk_origins,
        "replace the web origins allowed to use the organisation's SDK sessions (CORS)",
    )
    parser.add_argument(
        "origins",
        nargs="*",
        metavar="ORIGIN",
        help="scheme://host[:port], e.g. https://onboarding.bank.example; none clears them",
    )


def run_set_sdk_origins(args: argparse.Namespace) -> int:
    from services.kyc_tier import models
    from services.kyc_tier.sdk_sessions import set_origins

    try:
        with operator_session(args) as session:
            if session.get(models.Org, args.org) is None:
                raise CliError(f"no organisation {args.org!r}")
            origins = set_origins(session, args.org, list(args.origins))
    except DomainError as error:
        raise CliError(error.message) from None
    print(f"{args.org}: SDK origins {', '.join(origins) if origins else '(none)'}")
    return 0
