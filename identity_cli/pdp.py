"""`identity pdp record-of-processing`: the record of processing activities
(UU PDP No. 27/2022, art. 31) as JSON or CSV, from the declared tables
(identity_store.processing and .retention): per data class its purpose,
legal basis, categories, retention, processors, recipients and regions.
With `--org`, the organisation's longer retention overrides are applied.

    identity pdp record-of-processing [--org ORG] [--format json|csv]
                                      [--regions id-jkt-1,id-sby-1]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys

from identity_cli.common import command_group, database_action, database_session


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = command_group(subparsers, "pdp", "UU PDP records")
    record = database_action(
        sub, "record-of-processing", run_record, "export the record of processing activities"
    )
    record.add_argument("--org", help="an organisation (applies its retention overrides)")
    record.add_argument("--format", choices=("json", "csv"), default="json")
    record.add_argument(
        "--regions",
        default=os.environ.get("KYC_TIER_ALLOWED_REGIONS", "id-jkt-1"),
        help="regions the data lives in (default: KYC_TIER_ALLOWED_REGIONS, else id-jkt-1)",
    )


def run_record(args: argparse.Namespace) -> int:
    from identity_runtime.errors import NotFound, invalid_field
    from identity_runtime.residency import REGION
    from identity_store import processing

    regions = tuple(r.strip() for r in args.regions.split(",") if r.strip())
    if not regions or not all(REGION.match(r) for r in regions):
        raise invalid_field("regions", "a comma-separated list of Indonesian regions (id-xxx-N)")
    controller: dict[str, str] = {"org_id": "", "name": "every organisation (defaults)"}
    periods: dict[str, int] = {}
    if args.org:
        from services.kyc_tier import models
        from services.kyc_tier.retention_overrides import periods as org_periods

        with database_session(args) as session:
            org = session.get(models.Org, args.org)
            if org is None:
                raise NotFound("no such organisation", "ORGANIZATION_NOT_FOUND")
            controller = {"org_id": org.org_id, "name": org.name}
            periods = {k: v.days for k, v in org_periods(session, args.org).items()}
    rows = processing.rows(regions, periods)
    if args.format == "json":
        document = {"controller": controller, "processor": "Identity Platform", "activities": rows}
        print(json.dumps(document, indent=2))
        return 0
    out = csv.writer(sys.stdout)
    out.writerow(["org_id", *rows[0]])
    for row in rows:
        out.writerow(
            [controller["org_id"]]
            + ["; ".join(v) if isinstance(v, list) else v for v in row.values()]
        )
    return 0
