"""What the worker-thread hop of `Database.run` costs per transaction.

Every service runs its database work as synchronous SQLAlchemy in a worker
thread (`identity_store.db.Database.run`, `asyncio.to_thread`). An async
driver would run the same statements on the event loop, without the hop
(the thread's wake-up, the GIL changing hands, the loop woken back). This
times one transaction of three statements (a locking read, a read, an
UPDATE, as a capture's start does) on PostgreSQL both ways, in one process,
alternating, and reports CPU and wall time per transaction:

- `worker thread`: `await database.run(work)`, as the services do;
- `on the loop`: `with database.transaction()` on the event loop thread,
  which is what the hop costs at most (it blocks the loop while PostgreSQL
  answers, so it is a measure, not a design: an async driver adds its own
  costs back).

At concurrency c, c tasks run transactions at once (on the loop they queue).

    .venv/bin/python tools/bench/db_hops.py --transactions 2000 --concurrency 1,4
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from identity_store.db import Database
from identity_store.scratch import scratch_schema

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support import POSTGRES_URL  # noqa: E402

Way = Callable[[Database, int], Awaitable[None]]


def work(session: Session) -> None:
    session.execute(sa.text("SELECT v FROM probe WHERE k = 'a' FOR UPDATE")).scalar()
    session.execute(sa.text("SELECT v FROM probe WHERE k = 'a'")).scalar()
    session.execute(sa.text("UPDATE probe SET v = v + 1 WHERE k = 'b'"))


async def worker_thread(database: Database, count: int) -> None:
    for _ in range(count):
        await database.run(work)


async def on_the_loop(database: Database, count: int) -> None:
    for _ in range(count):
        with database.transaction() as session:
            work(session)
        await asyncio.sleep(0)  # let the other tasks in between, as an await would


async def per_transaction(
    way: Way, database: Database, count: int, concurrency: int
) -> tuple[float, float]:
    """(CPU µs, wall µs) per transaction."""
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(way(database, count // concurrency) for _ in range(concurrency)))
    return (
        (time.process_time() - cpu) / count * 1e6,
        (time.perf_counter() - wall) / count * 1e6,
    )


async def measure(url: str, count: int, levels: list[int], rounds: int) -> None:
    database = Database(url, pool_size=max(levels) + 1)
    with database.transaction() as session:
        session.execute(sa.text("CREATE TABLE probe (k text PRIMARY KEY, v int)"))
        session.execute(sa.text("INSERT INTO probe VALUES ('a', 1), ('b', 1)"))
    ways: dict[str, Way] = {"worker thread": worker_thread, "on the loop": on_the_loop}
    for way in ways.values():  # warm the pool and the statement caches
        await per_transaction(way, database, 200, 1)
    print(f"{count} transactions per round, {rounds} rounds, medians; PostgreSQL")
    print("| concurrency | way | CPU µs / transaction | wall µs / transaction |")
    print("|---:|---|---:|---:|")
    for concurrency in levels:
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
        for _ in range(rounds):  # alternating, so that both see the same machine
            for name, way in ways.items():
                runs[name].append(await per_transaction(way, database, count, concurrency))
        for name, figures in runs.items():
            cpu = statistics.median(f[0] for f in figures)
            wall = statistics.median(f[1] for f in figures)
            print(f"| {concurrency} | {name} | {cpu:.0f} | {wall:.0f} |")
    database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,4")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default=POSTGRES_URL)
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    with scratch_schema(args.postgres, prefix="hops") as url:
        asyncio.run(measure(url, args.transactions, levels, args.rounds))


if __name__ == "__main__":
    main()
