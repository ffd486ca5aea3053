"""`identity customers legal-hold`: place or lift a legal hold on a customer.

While a customer is held, erasure is refused (409 LEGAL_HOLD). The same
change is available to internal-scope keys at
POST /api/identity/customers/{id}/legal-hold; both are audited
(`customer.legal_hold`, delivered by kyc-tier's outbox relay).
"""

from __future__ import annotations

import argparse

from identity_cli.common import command_group, operator_session, org_action
from identity_store.types import utcnow


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = command_group(subparsers, "customers", "a partner's customers")
    hold = org_action(
        sub, "legal-hold", run_legal_hold, "place or lift a legal hold (erasure is refused)"
    )
    hold.add_argument("customer_id")
    state = hold.add_mutually_exclusive_group(required=True)
    state.add_argument("--on", dest="hold", action="store_true", help="place the hold")
    state.add_argument("--off", dest="hold", action="store_false", help="lift the hold")
    hold.add_argument(
        "--reason",
        default="",
        help="a case code such as case-2026-114 (no spaces, no personal data)",
    )


def run_legal_hold(args: argparse.Namespace) -> int:
    from services.kyc_tier.customers import set_legal_hold

    with operator_session(args) as session:
        view = set_legal_hold(session, args.org, args.customer_id, args.hold, args.reason, utcnow())
    print(f"{view.customer_id}: legal hold {'on' if view.legal_hold else 'off'}")
    return 0
