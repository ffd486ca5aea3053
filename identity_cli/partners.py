"""`identity orgs create`, `identity api-keys create` and `identity api-keys
revoke`: bootstrap (and cut off) partner access. An organisation's settings:
identity_cli.org_settings.

The first key of an organisation cannot come through the API (there is no
key yet); operators create it here, on a machine that can reach the database.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from identity_cli import org_settings, sdk_origins
from identity_cli.common import (
    ServiceSecret,
    command_group,
    database_action,
    database_session,
    operator_session,
    org_action,
)
from identity_cli.errors import CliError
from identity_cli.local_secrets import API_KEY_PEPPER_FILE

PEPPER = ServiceSecret("KYC_TIER_API_KEY_PEPPER", API_KEY_PEPPER_FILE, "API-key pepper", "kyc-tier")


def register(subparsers: argparse._SubParsersAction) -> None:
    orgs_sub = command_group(subparsers, "orgs", "partner organisations")
    create_org = database_action(orgs_sub, "create", run_create_org, "create an organisation")
    create_org.add_argument("--name", required=True)
    create_org.add_argument("--id", help="organisation id (default: generated)")
    org_settings.register(orgs_sub)
    _register_liveness_policy(orgs_sub)
    sdk_origins.register_into(orgs_sub)

    keys_sub = command_group(subparsers, "api-keys", "partner API keys")
    create_key = org_action(
        keys_sub, "create", run_create_key, "create an API key and print it once"
    )
    create_key.add_argument("--name", required=True)
    create_key.add_argument(
        "--scope",
        action="append",
        choices=["public", "internal"],
        help="repeatable; default public",
    )
    PEPPER.add_option(create_key)
    revoke_key = org_action(
        keys_sub,
        "revoke",
        run_revoke_key,
        "revoke an API key (every gateway refuses it within a second)",
    )
    revoke_key.add_argument("api_key_id")


def run_create_org(args: argparse.Namespace) -> int:
    from services.kyc_tier.partners import create_org

    with database_session(args) as session:
        org_id = create_org(session, args.name, args.id)
    print(org_id)
    return 0


def run_create_key(args: argparse.Namespace) -> int:
    from services.kyc_tier.partners import PartnerDirectory

    pepper = PEPPER.read(args)
    with operator_session(args) as session:
        record, secret = PartnerDirectory(pepper).create_api_key(
            session, args.org, args.name, tuple(args.scope or ("public",))
        )
    print(
        f"api key {record.api_key_id} ({', '.join(record.scopes)}) for {record.org_id}:",
        file=sys.stderr,
    )
    print(secret)
    return 0


def _register_liveness_policy(orgs_sub: argparse._SubParsersAction) -> None:
    policy = org_action(
        orgs_sub,
        "set-liveness-policy",
        run_set_liveness_policy,
        "switch an organisation's liveness policy: pinned PAD models, PAD threshold, "
        "flash check, shadow scoring (effective at once; audited)",
    )
    models = policy.add_mutually_exclusive_group()
    models.add_argument("--pad-models", help="comma-separated PAD model ids to pin, fused")
    models.add_argument(
        "--default-models", action="store_true", help="back to the deployment's PAD models"
    )
    threshold = policy.add_mutually_exclusive_group()
    threshold.add_argument("--pad-threshold", type=float, help="fused PAD live-score threshold")
    threshold.add_argument(
        "--default-threshold", action="store_true", help="back to the models' threshold"
    )
    policy.add_argument("--flash-check", choices=("on", "off"), help="the flash-challenge check")
    policy.add_argument("--shadow", choices=("on", "off"), help="shadow scoring of a candidate")


def liveness_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if args.pad_models is not None:
        changes["pad_models"] = tuple(m.strip() for m in args.pad_models.split(",") if m.strip())
    if args.default_models:
        changes["pad_models"] = ()
    if args.pad_threshold is not None:
        changes["pad_threshold"] = args.pad_threshold
    if args.default_threshold:
        changes["pad_threshold"] = None
    if args.flash_check is not None:
        changes["flash_check"] = args.flash_check == "on"
    if args.shadow is not None:
        changes["shadow"] = args.shadow == "on"
    if not changes:
        raise CliError("nothing to switch: give at least one of the policy options")
    return changes


def run_set_liveness_policy(args: argparse.Namespace) -> int:
    from services.kyc_tier import org_policies

    changes = liveness_changes(args)
    try:
        with operator_session(args) as session:
            _, new = org_policies.switch(session, args.org, **changes)
    except LookupError:
        raise CliError(f"no organisation {args.org!r}") from None
    shown = ", ".join(f"{k} {v}" for k, v in org_policies.describe(new).items())
    print(f"{args.org}: liveness policy {shown}")
    return 0


def run_revoke_key(args: argparse.Namespace) -> int:
    from services.kyc_tier.partners import PartnerDirectory

    with operator_session(args) as session:
        # Revocation needs no pepper: the key is named by its id.
        record = PartnerDirectory("").revoke_api_key(session, args.org, args.api_key_id)
    print(f"api key {record.api_key_id} revoked at {record.revoked_at:%Y-%m-%dT%H:%M:%SZ}")
    return 0
