#!/usr/bin/env python3
"""A backlog of expired flash challenges swept by liveness's retention sweeper.

    .venv/bin/python tools/bench/retention_sweep.py [--rows 1000000] [--batch 1000]
        [--database postgres|sqlite]

Fills a fresh database (a scratch PostgreSQL schema, or a SQLite file in a
temporary directory) with `--rows` challenges that expired a year ago, then
runs one sweep (bounded batches, one transaction each). Prints the rows
deleted, rows per second, the batches, and the longest batch transaction:
the longest any row lock (PostgreSQL) or the write lock (SQLite) was held.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

FILL_CHUNK = 20_000


def fill(database: object, rows: int, now: datetime) -> None:
    from sqlalchemy import insert

    from services.liveness.models import Challenge

    expired = now - timedelta(days=365)
    for start in range(0, rows, FILL_CHUNK):
        with database.transaction() as session:  # type: ignore[attr-defined]
            session.execute(
                insert(Challenge),
                [
                    {
                        "challenge_id": f"chl_{i:012d}",
                        "org_id": "org_bench",
                        "customer_id": "cus_bench",
                        "purpose": "step_up",
                        "sequence": ["#ff0000"],
                        "flash_duration_ms": 400,
                        "issued_at": expired,
                        "expires_at": expired,
                    }
                    for i in range(start, min(rows, start + FILL_CHUNK))
                ],
            )


def run(url: str, rows: int, batch: int) -> dict[str, float]:
    from identity_store.db import Database
    from services.liveness.retention import LivenessSweeper

    now = datetime.now(UTC)
    database = Database(url)
    try:
        started = time.perf_counter()
        fill(database, rows, now)
        filled = time.perf_counter() - started
        sweeper = LivenessSweeper(database, lambda: now, timedelta(hours=24), batch)
        started = time.perf_counter()
        counts = sweeper.sweep()
        elapsed = time.perf_counter() - started
    finally:
        database.dispose()
    return {
        "rows": counts["challenges"],
        "fill_seconds": round(filled, 1),
        "sweep_seconds": round(elapsed, 1),
        "rows_per_second": round(counts["challenges"] / elapsed),
        "batch": batch,
        "longest_batch_ms": round(sweeper.longest_batch_seconds * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    args = parser.parse_args()

    from identity_store import migrate
    from identity_store.scratch import scratch_schema
    from services.liveness.migrations import HISTORY
    from tests.support import POSTGRES_URL

    def prepare(url: str) -> None:
        migrate.upgrade(url, HISTORY)

    if args.database == "postgres":
        with scratch_schema(POSTGRES_URL, "bench", prepare) as url:
            result = run(url, args.rows, args.batch)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'liveness.db'}"
            prepare(url)
            result = run(url, args.rows, args.batch)
    print(json.dumps({"database": args.database, **result}))


if __name__ == "__main__":
    main()
