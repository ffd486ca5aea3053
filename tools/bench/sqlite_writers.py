#!/usr/bin/env python3
"""How long an audit append waits for the SQLite write lock, eight writer processes.

    .venv/bin/python tools/bench/sqlite_writers.py [--no-writer-lock] [--rounds 3]

The setting of tests/service/test_audit.py::test_eight_writer_processes_leave_one_gap_free_chain
(8 processes x 40 appends, one transaction each, on one migrated SQLite
file), timing each transaction. `--no-writer-lock` turns off the lock file
identity_store.db queues writers on, leaving SQLite's own busy handler
(BEGIN IMMEDIATE + busy_timeout 15 s), which polls with growing sleeps and
no queue: its worst wait is what ran past 15 s ("database is locked") on a
busy machine. Prints the worst and the median wait of each round.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

WRITERS = 8
PER_WRITER = 40


def _writer(
    url: str, keyring_json: str, writer: int, barrier: threading.Barrier, no_lock: bool
) -> list[float]:
    from identity_crypto.keyring import Keyring
    from identity_store import db
    from services.audit.bootstrap import open_database
    from services.audit.chain import Draft
    from services.audit.log import AuditLog

    if no_lock:
        db._SerialisedConnection.acquire_write_lock = lambda self: None  # type: ignore[method-assign]
    database = open_database(url)
    audit_log = AuditLog(Keyring.from_json(keyring_json))
    barrier.wait()
    waits = []
    for i in range(PER_WRITER):
        draft = Draft("org_a", f"service:w{writer}", "face.match", f"customer:c{i}", "success", "r")
        started = time.monotonic()
        with database.transaction() as session:
            audit_log.append(session, [draft])
        waits.append(time.monotonic() - started)
    database.dispose()
    return waits


def round_(no_lock: bool) -> dict[str, float]:
    from identity_cli.schema import migrate_all
    from identity_crypto.keyring import generate

    url = f"sqlite:///{tempfile.mkdtemp(prefix='sqlite-writers-')}/identity.db"
    migrate_all(url)
    keyring = generate("bench-1").to_json()
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(WRITERS)
        with context.Pool(WRITERS) as pool:
            started = time.monotonic()
            results = pool.starmap(
                _writer, [(url, keyring, w, barrier, no_lock) for w in range(WRITERS)]
            )
            total = time.monotonic() - started
    waits = [w for result in results for w in result]
    return {
        "total_s": round(total, 2),
        "worst_s": round(max(waits), 3),
        "median_s": round(statistics.median(waits), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-writer-lock", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for _ in range(args.rounds):
        print(json.dumps({"writer_lock": not args.no_writer_lock, **round_(args.no_writer_lock)}))


if __name__ == "__main__":
    main()
