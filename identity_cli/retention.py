"""`identity retention`: the declared retention table, and one sweep now.

    identity retention show
    identity retention sweep [--service all|kyc-tier|liveness|matching] [--batch N]

The services sweep by themselves periodically (`<PREFIX>_RETENTION_SWEEP_
INTERVAL_SECONDS`); `sweep` runs one pass at once on the given database (for
a CronJob or an operator), with the same bounded batches, so it is safe
beside running replicas. kyc-tier's per-organisation summary entries are
queued in its audit outbox and delivered by kyc-tier's relay. Prints counts
per data class only.
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta

from identity_cli.common import add_database_options, existing_database_url
from identity_store.db import Database
from identity_store.types import utcnow

SERVICES = ("kyc-tier", "liveness", "matching")


def register(subparsers: argparse._SubParsersAction) -> None:
    retention = subparsers.add_parser("retention", help="retention periods and sweeps")
    sub = retention.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="print the declared data classes and periods (JSON)")
    show.set_defaults(handler=run_show)
    sweep = sub.add_parser("sweep", help="delete what is past its period now (bounded batches)")
    sweep.add_argument("--service", choices=("all", *SERVICES), default="all")
    sweep.add_argument("--batch", type=int, default=1000, help="rows per transaction")
    sweep.add_argument(
        "--nonce-retention-hours",
        type=int,
        default=24,
        help="liveness's replay window (LIVENESS_NONCE_RETENTION_HOURS)",
    )
    add_database_options(sweep)
    sweep.set_defaults(handler=run_sweep)


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
            result["kyc-tier"] = KycSweeper(database, utcnow, args.batch).sweep()
        if "liveness" in chosen:
            window = timedelta(hours=args.nonce_retention_hours)
            result["liveness"] = LivenessSweeper(database, utcnow, window, args.batch).sweep()
        if "matching" in chosen:
            result["matching"] = MatchingSweeper(database, utcnow, args.batch).sweep()
    finally:
        database.dispose()
    print(json.dumps(result, sort_keys=True))
    return 0
