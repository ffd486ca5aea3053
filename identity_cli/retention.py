"""`identity retention`: the declared retention table, one sweep now, and
per-organisation overrides.

    identity retention show
    identity retention sweep [--service all|kyc-tier|liveness|matching|audit] [--batch N]
    identity retention override set --org ORG --class CLASS --days N --basis TEXT
    identity retention override clear --org ORG --class CLASS
    identity retention override list [--org ORG]

The services sweep by themselves periodically (`<PREFIX>_RETENTION_SWEEP_
INTERVAL_SECONDS`, audit's `AUDIT_RETENTION_PURGE_INTERVAL_SECONDS`); `sweep`
runs one pass at once on the given database (for the chart's CronJobs or an
operator), with the same bounded batches, so it is safe beside running
replicas. `--service audit` purges the audit chain's prefix past 7 years
behind a signed checkpoint, never past a legal hold (it needs the chain's
HMAC keyring: --keyring or AUDIT_HMAC_KEYRING_FILE); `all` leaves the audit
chain to the audit service and its own CronJob. kyc-tier's per-organisation
summary entries are queued in its audit outbox and delivered by kyc-tier's
relay. Prints counts per data class only.

An override may only LENGTHEN one of kyc-tier's classes (the declared period
is the regulated minimum); it is audited (`retention.override_set`).
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from typing import TYPE_CHECKING

from identity_cli.common import (
    command_group,
    database_action,
    database_session,
    existing_database_url,
    operator_session,
    org_action,
)
from identity_store.db import Database
from identity_store.types import utcnow

if TYPE_CHECKING:
    from services.audit.retention import AuditPurgeSweep

SERVICES = ("kyc-tier", "liveness", "matching")


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = command_group(subparsers, "retention", "retention periods and sweeps")
    show = sub.add_parser("show", help="print the declared data classes and periods (JSON)")
    show.set_defaults(handler=run_show)
    sweep = database_action(
        sub, "sweep", run_sweep, "delete what is past its period now (bounded batches)"
    )
    sweep.add_argument("--service", choices=("all", *SERVICES, "audit"), default="all")
    sweep.add_argument("--batch", type=int, default=1000, help="rows per transaction")
    sweep.add_argument(
        "--nonce-retention-hours",
        type=int,
        default=24,
        help="liveness's replay window (LIVENESS_NONCE_RETENTION_HOURS)",
    )
    sweep.add_argument("--keyring", help="audit: the chain's HMAC keyring file")
    actions = command_group(sub, "override", "an organisation's longer periods (audited)")
    set_ = org_action(actions, "set", run_override_set, "lengthen a period for an organisation")
    set_.add_argument("--days", type=int, required=True, help="the new, longer period in days")
    set_.add_argument("--basis", required=True, help="the regulation or order requiring it")
    clear = org_action(actions, "clear", run_override_clear, "back to the declared period")
    for parser in (set_, clear):
        parser.add_argument("--class", dest="data_class", required=True, help="data class")
    hold = database_action(
        sub,
        "audit-hold",
        run_audit_hold,
        "hold (or release) an organisation's audit entries from the purge",
    )
    hold.add_argument("--tenant", required=True, help="organisation id")
    state = hold.add_mutually_exclusive_group(required=True)
    state.add_argument("--on", dest="hold", action="store_true", help="place the hold")
    state.add_argument("--off", dest="hold", action="store_false", help="lift the hold")
    hold.add_argument(
        "--reason", required=True, help="a case code such as case-2026-114 (no personal data)"
    )
    hold.add_argument("--keyring", help="the chain's HMAC keyring file")
    listing = database_action(actions, "list", run_override_list, "print the overrides (JSON)")
    listing.add_argument("--org", help="one organisation")


def run_show(args: argparse.Namespace) -> int:
    from identity_store.retention import RETENTION

    rows = [
        {
            "class": c.name,
            "owner": c.owner,
            "period_days": None if c.period is None else c.period.days,
            "basis": c.basis,
        }
        for c in RETENTION.values()
    ]
    print(json.dumps(rows, indent=2))
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    from identity_runtime.errors import invalid_field
    from services.kyc_tier.retention import KycSweeper
    from services.liveness.retention import LivenessSweeper
    from services.matching.retention import MatchingSweeper

    if args.batch < 1:
        raise invalid_field("batch", "must be at least 1")
    database = Database(existing_database_url(args))
    chosen = SERVICES if args.service == "all" else (args.service,)
    result: dict[str, object] = {}
    try:
        if "kyc-tier" in chosen:
            kyc = KycSweeper(database, utcnow, args.batch)
            result["kyc-tier"] = kyc.sweep()
            result["kyc-tier-platform"] = kyc.platform_counts
        if "liveness" in chosen:
            window = timedelta(hours=args.nonce_retention_hours)
            result["liveness"] = LivenessSweeper(database, utcnow, window, args.batch).sweep()
        if "matching" in chosen:
            result["matching"] = MatchingSweeper(database, utcnow, args.batch).sweep()
        if "audit" in chosen:
            result["audit"] = _audit_sweeper(args, database).sweep()
    finally:
        database.dispose()
    print(json.dumps(result, sort_keys=True))
    return 0


def _audit_sweeper(args: argparse.Namespace, database: Database) -> AuditPurgeSweep:
    from identity_cli.audit import hmac_keyring
    from services.audit.log import AuditLog
    from services.audit.retention import AuditPurgeSweep

    return AuditPurgeSweep(database, AuditLog(hmac_keyring(args)), utcnow, args.batch)


def run_override_set(args: argparse.Namespace) -> int:
    from services.kyc_tier.retention_overrides import set_override

    with operator_session(args) as session:
        row = set_override(
            session, args.org, args.data_class, args.days, args.basis, "system:identity-cli"
        )
        shown = {"org_id": row.org_id, "data_class": row.data_class, "days": row.period_days}
    print(json.dumps(shown, sort_keys=True))
    return 0


def run_override_clear(args: argparse.Namespace) -> int:
    from services.kyc_tier.retention_overrides import clear_override

    with operator_session(args) as session:
        cleared = clear_override(session, args.org, args.data_class, "system:identity-cli")
    print(json.dumps({"cleared": cleared}))
    return 0


def run_override_list(args: argparse.Namespace) -> int:
    from services.kyc_tier.retention_overrides import listed

    with database_session(args) as session:
        rows = listed(session, args.org)
    print(json.dumps(rows, indent=2, sort_keys=True))
    return 0


def run_audit_hold(args: argparse.Namespace) -> int:
    """Append the hold to the chain itself: the purge reads holds from there."""
    from identity_cli.audit import hmac_keyring
    from services.audit import holds
    from services.audit.chain import Draft, validate_draft
    from services.audit.log import AuditLog

    draft = validate_draft(
        Draft(
            tenant_id=args.tenant,
            actor="system:identity-cli",
            action=holds.TENANT_HOLD,
            subject=f"tenant:{args.tenant}",
            outcome="success",
            request_id="",
            details=holds.hold_entry_details(args.hold, args.reason),
        )
    )
    audit_log = AuditLog(hmac_keyring(args))
    with database_session(args) as session:
        [entry] = audit_log.append(session, [draft])
    print(json.dumps({"tenant": args.tenant, "hold": args.hold, "sequence": entry.sequence}))
    return 0
