#!/usr/bin/env python3
"""Streamed CSV exports: memory stays bounded by a batch whatever the row count.

    .venv/bin/python tools/bench/export_stream.py [--rows 5000,20000,80000] [--postgres]

For each row count, an organisation with that many customers (inserted in
bulk into a scratch SQLite file, or a scratch PostgreSQL schema), then the
export as kyc-tier streams it (services/kyc_tier/export.py: the count, then
the header and one chunk per BATCH_ROWS rows, each batch its own read
transaction). Reported: total CSV bytes, time to the first row chunk, total
time, rows per second, and the peak Python memory allocated while streaming
(tracemalloc) next to the size of the file: the peak should stay flat as the
file grows. (The old unary export held the whole file, so its peak grew with it.)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import machine_speed, scratch_schema
from sqlalchemy import insert

from identity_cli.schema import migrate_all
from identity_store.db import Database
from services.kyc_tier import export, models
from services.kyc_tier.partners import create_org


def seed(database: Database, rows: int) -> tuple[str, export.Bounds]:
    start = datetime.now(UTC) - timedelta(hours=2)
    with database.transaction() as session:
        org_id = create_org(session, f"Bench {rows}")
    for first in range(0, rows, 10_000):
        values = [
            {
                "customer_id": f"cus_{org_id[-10:]}_{i:07d}",
                "org_id": org_id,
                "external_id": f"ext-{i}",
                "full_name": f"Siti Rahayu {i}",
                "email": f"siti{i}@mail.example",
                "phone": "+6281234567890",
                "nik_masked": "************0003",
                "tier": "basic",
                "status": "active",
                "created_at": start + timedelta(milliseconds=i),
                "updated_at": start,
            }
            for i in range(first, min(rows, first + 10_000))
        ]
        with database.transaction() as session:
            session.execute(insert(models.Customer), values)
    return org_id, (start - timedelta(minutes=1), datetime.now(UTC))


def stream(database: Database, org_id: str, span: export.Bounds) -> dict[str, float]:
    table = export.CUSTOMERS
    tracemalloc.start()
    started = time.perf_counter()
    with database.transaction() as session:
        export.count(session, table, org_id, span)
    size, first, cursor = len(export.header(table)), 0.0, None
    while True:
        with database.transaction() as session:
            chunk, cursor = export.batch(session, table, org_id, span, cursor, {})
        if chunk and not first:
            first = time.perf_counter() - started
        size += len(chunk)
        if cursor is None:
            break
    total = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"bytes": size, "first_chunk_s": first, "total_s": total, "peak_bytes": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="5000,20000,80000")
    parser.add_argument("--postgres", action="store_true", help="a scratch PostgreSQL schema")
    args = parser.parse_args()
    results = []
    for rows in (int(r) for r in args.rows.split(",")):
        with ExitStack() as stack:
            if args.postgres:
                url = stack.enter_context(scratch_schema())
            else:
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                url = f"sqlite:///{folder / 'bench.db'}"
                migrate_all(url)
            database = Database(url)
            stack.callback(database.dispose)
            org_id, span = seed(database, rows)
            figures = stream(database, org_id, span)
        results.append(
            {
                "rows": rows,
                "csv_mib": round(figures["bytes"] / 2**20, 2),
                "first_chunk_ms": round(figures["first_chunk_s"] * 1000, 1),
                "total_s": round(figures["total_s"], 2),
                "rows_per_s": round(rows / figures["total_s"]),
                "peak_python_mib": round(figures["peak_bytes"] / 2**20, 2),
            }
        )
        print(json.dumps(results[-1]), flush=True)
    print(json.dumps({"machine": machine_speed(), "batch_rows": export.BATCH_ROWS}))


if __name__ == "__main__":
    main()
