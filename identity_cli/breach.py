"""`identity breach`: breach response under UU PDP (notification within 72 hours).

    identity breach assess [--org ORG] --incident REF
    identity breach notify [--org ORG] --incident REF --detected-at ISO8601
                           [--format markdown|json] [--customers-file PATH]
    identity breach revoke-templates (--org ORG | --all) --incident REF [--dry-run | --yes]

`assess` is a dry run: per organisation, how many customers, NIKs, sealed
captures and face templates the platform holds (counts only, nothing
changes). `notify` prints the 72-hour notification report for the
organisations (controllers) to complete and send; the affected customers
(ids and the partner's external id, no other personal data) go only to
`--customers-file`, created 0600, never to the terminal. `revoke-templates`
retires every face template of the organisation or of the platform, shreds
the template keys and flags the customers for re-enrollment (`--dry-run`
prints what it would do). Every command queues one audit entry per
organisation (counts and the incident reference only).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from identity_cli.common import (
    add_database_options,
    as_operator,
    command_group,
    existing_database_url,
)
from identity_store.db import Database
from identity_store.types import utcnow


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = command_group(subparsers, "breach", "breach response (UU PDP 72-hour notification)")
    assess = sub.add_parser("assess", help="dry run: what an incident exposes, per organisation")
    _common(assess)
    assess.set_defaults(handler=run_assess)
    notify = sub.add_parser("notify", help="the 72-hour notification report")
    _common(notify)
    notify.add_argument(
        "--detected-at",
        required=True,
        type=_instant,
        help="when the breach was detected (ISO 8601)",
    )
    notify.add_argument("--format", choices=("markdown", "json"), default="markdown")
    notify.add_argument(
        "--customers-file", type=Path, help="write the affected customers here (CSV, mode 0600)"
    )
    notify.set_defaults(handler=run_notify)
    revoke = sub.add_parser(
        "revoke-templates", help="retire and shred face templates; flag customers to re-enroll"
    )
    scope = revoke.add_mutually_exclusive_group(required=True)
    scope.add_argument("--org", help="one organisation")
    scope.add_argument("--all", action="store_true", help="every organisation of the platform")
    revoke.add_argument(
        "--incident", required=True, help="the incident's case code, e.g. INC-2026-07"
    )
    revoke.add_argument("--batch", type=int, default=1000, help="templates per transaction")
    mode = revoke.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dry-run", action="store_true", help="print what would be revoked")
    mode.add_argument("--yes", action="store_true", help="confirm: the templates are destroyed")
    add_database_options(revoke)
    revoke.set_defaults(handler=run_revoke)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--org", help="one organisation (default: every organisation)")
    parser.add_argument(
        "--incident", required=True, help="the incident's case code, e.g. INC-2026-07"
    )
    add_database_options(parser)


def _instant(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError("give the time zone (e.g. 2026-11-26T08:00:00+07:00)")
    return parsed


def _exposure(database: Database, org_id: str | None) -> dict[str, dict[str, int]]:
    """kyc-tier's and matching's counts per organisation (counts only)."""
    from services.kyc_tier import breach as kyc_breach
    from services.matching import breach as matching_breach

    with database.transaction() as session:
        found = kyc_breach.exposure(session, org_id)
        templates = matching_breach.affected(session, org_id)
    empty = {"customers_with_templates": 0, "templates": 0}
    return {
        org: {**found.get(org, {}), **templates.get(org, empty)}
        for org in sorted(set(found) | set(templates))
    }


def _audit(
    database: Database, action: str, counts: dict[str, dict[str, int]], **extra: Any
) -> None:
    from services.kyc_tier import breach as kyc_breach

    for org, values in counts.items():
        with database.transaction() as session, as_operator(org):
            kyc_breach.record(session, org, action, {**values, **extra})


def _totals(counts: dict[str, dict[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for values in counts.values():
        for name, n in values.items():
            totals[name] = totals.get(name, 0) + n
    return totals


def run_assess(args: argparse.Namespace) -> int:
    from services.kyc_tier.breach import require_incident

    incident = require_incident(args.incident)
    database = Database(existing_database_url(args))
    try:
        counts = _exposure(database, args.org)
        _audit(database, "breach.assessed", counts, incident=incident)
    finally:
        database.dispose()
    report = {"incident": incident, "dry_run": True, "organisations": counts}
    print(json.dumps({**report, "totals": _totals(counts)}, indent=2, sort_keys=True))
    return 0


def run_notify(args: argparse.Namespace) -> int:
    from identity_cli.breach_report import render_markdown, report
    from services.kyc_tier.breach import affected_customers, require_incident

    incident = require_incident(args.incident)
    database = Database(existing_database_url(args))
    try:
        counts = _exposure(database, args.org)
        written = 0
        if args.customers_file is not None:
            with database.transaction() as session:
                written = _write_customers(
                    args.customers_file, affected_customers(session, args.org)
                )
        _audit(database, "breach.notification_prepared", counts, incident=incident)
    finally:
        database.dispose()
    document = report(incident, args.detected_at, utcnow(), counts, _totals(counts))
    if written:
        document["customers_file_rows"] = written
    if args.format == "json":
        print(json.dumps(document, indent=2, sort_keys=True))
    else:
        print(render_markdown(document))
    return 0


def _write_customers(path: Path, rows: Any) -> int:
    """The affected customers for the controllers' notices, readable by the operator only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    written = 0
    with os.fdopen(descriptor, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["org_id", "customer_id", "external_id"])
        for row in rows:
            out.writerow(row)
            written += 1
    return written


def run_revoke(args: argparse.Namespace) -> int:
    from identity_runtime.errors import invalid_field
    from services.kyc_tier.breach import flag_for_reenrollment, require_incident
    from services.matching.breach import revoke_templates

    incident = require_incident(args.incident)
    if args.batch < 1:
        raise invalid_field("batch", "must be at least 1")
    org_id = None if args.all else args.org
    database = Database(existing_database_url(args))
    try:
        if args.dry_run:
            counts = _exposure(database, org_id)
            planned = {
                org: {k: v[k] for k in ("customers_with_templates", "templates")}
                for org, v in counts.items()
                if v["templates"]
            }
            _audit(database, "breach.revocation_planned", planned, incident=incident)
            result: dict[str, Any] = {"dry_run": True, "organisations": planned}
        else:
            done = revoke_templates(database, org_id, args.batch)
            now = utcnow()
            revoked = {}
            for org, outcome in done.items():
                details = {
                    "templates": outcome.enrollments,
                    "keys_destroyed": outcome.keys_destroyed,
                    "incident": incident,
                }
                with as_operator(org):
                    flagged = flag_for_reenrollment(database, org, outcome.customers, now, details)
                revoked[org] = {
                    "templates_retired": outcome.enrollments,
                    "keys_destroyed": outcome.keys_destroyed,
                    "customers_flagged": flagged,
                }
            result = {"dry_run": False, "organisations": revoked}
    finally:
        database.dispose()
    result["incident"] = incident
    result["totals"] = _totals(result["organisations"])
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0
