"""Shared helpers of the benchmarks: a scratch PostgreSQL schema, service subprocesses,
a matching service's customers and callers, statistics.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


from identity_cli.schema import migrate_all  # noqa: E402
from identity_platform_api.common.v1 import types_pb2  # noqa: E402
from identity_platform_api.matching.v1 import matching_pb2, matching_pb2_grpc  # noqa: E402
from identity_runtime.meshauth import TokenSigner  # noqa: E402
from identity_store.scratch import scratch_schema as _scratch_schema  # noqa: E402
from tests.support import POSTGRES_URL as DEFAULT_POSTGRES  # noqa: E402
from tests.support.meshauth import service_env, signer  # noqa: E402

Item = TypeVar("Item")
Side = TypeVar("Side")


def scratch_schema(
    base_url: str = DEFAULT_POSTGRES, identity: Path | None = None
) -> AbstractContextManager[str]:
    """A PostgreSQL schema of its own with every service's tables, dropped
    afterwards; migrated by `identity` (another checkout's CLI: a baseline's
    schema is its own history's) or else by this checkout."""

    def migrate_with_baseline(url: str) -> None:
        subprocess.run([str(identity), "migrate", "--database-url", url], check=True)

    prepare = migrate_all if identity is None else migrate_with_baseline
    return _scratch_schema(base_url, prefix="bench", prepare=prepare)


def matching_env(database_url: str, **extra: str) -> dict[str, str]:
    """A benchmark's matching service settings: its database, a fresh key
    ring, no background sync during the run, the access log at BENCH_LOG_LEVEL
    (INFO, as shipped, unless set); `extra` adds or overrides."""
    from identity_crypto.keyring import generate

    return {
        "MATCHING_DATABASE_URL": database_url,
        "MATCHING_KEK_KEYRING": generate("kek-bench").to_json(),
        "MATCHING_SYNC_INTERVAL_SECONDS": "3600",
        "MATCHING_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
        **extra,
    }


def variant(text: str) -> tuple[str, dict[str, str]]:
    """NAME:KEY=VALUE,KEY=VALUE (a `--variant`: this checkout's server with those variables)."""
    name, _, assignments = text.partition(":")
    pairs = (a.partition("=") for a in assignments.split(",") if a)
    return name, {key: value for key, _, value in pairs}


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@contextmanager
def service_process(
    module: str,
    env: dict[str, str],
    cpu: int | None = None,
    root: Path | None = None,
    args: Iterable[str] = (),
) -> Iterator[tuple[str, int]]:
    """Run `python -m <module> [args]` on a free port; yields (address, pid). `root`: run
    another checkout's code with its own virtualenv (a baseline to compare with)."""
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    root = root or ROOT
    python = str(root / ".venv/bin/python") if root != ROOT else sys.executable
    command = [python, "-m", module, *args]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    # The tests' mesh keys: the benchmark's own calls carry tests.support.meshauth tokens.
    prefix = module.rpartition(".")[2].upper()
    full_env = {**os.environ, "PYTHONPATH": str(root), **service_env(prefix), **env}
    process = subprocess.Popen(
        command, env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=root
    )
    try:
        deadline = time.monotonic() + 300
        address = None
        while address is None:
            if process.poll() is not None:
                raise RuntimeError(f"{module} exited: {Path(log.name).read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{module} did not start")
            match = re.search(r"listening on (\S+:\d+)", Path(log.name).read_text())
            address = match.group(1) if match else None
            time.sleep(0.2)
        yield address, process.pid
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        os.unlink(log.name)


@cache
def kyc_tier_signer() -> TokenSigner:
    """One signer, as a mesh client holds one: it reuses its token for half a
    minute (identity_runtime.meshauth.TokenSigner.mint)."""
    return signer("kyc-tier")


def caller_metadata(org_id: str) -> tuple[tuple[str, str], ...]:
    """kyc-tier's caller token for a call on behalf of `org_id` (a tuple: the
    type grpc's stubs declare for `metadata`)."""
    token = kyc_tier_signer().mint(org_id, "api_key:key_test", ("public", "internal"))
    return (("authorization", f"Bearer {token}"),)


@dataclass(frozen=True)
class MatchingCustomers:
    """Customers with random unit SFace embeddings, to enrol with the matching
    service and verify against; probe `i` is customer `i` (modulo their number)."""

    ids: list[str]
    faces: np.ndarray
    org_id: str = "org_profile"
    contract = types_pb2.EmbeddingContract(model_id="sface-2021dec", dimension=128)

    @classmethod
    def random(cls, rng: np.random.Generator, count: int) -> MatchingCustomers:
        faces = rng.standard_normal((count, 128)).astype(np.float32)
        faces /= np.linalg.norm(faces, axis=1, keepdims=True)
        return cls([f"cus_{i:05d}" for i in range(count)], faces)

    def customer_id(self, i: int) -> str:
        return self.ids[i % len(self.ids)]

    def embedding(self, i: int) -> types_pb2.Embedding:
        values = self.faces[i % len(self.ids)].tolist()
        return types_pb2.Embedding(contract=self.contract, values=values)

    async def enrol(self, stub: matching_pb2_grpc.MatchingServiceAsyncStub) -> None:
        for i, customer_id in enumerate(self.ids):
            await stub.Enroll(
                matching_pb2.EnrollRequest(
                    customer_id=customer_id,
                    embedding=self.embedding(i),
                    source=types_pb2.ENROLLMENT_SOURCE_DUKCAPIL,
                ),
                metadata=caller_metadata(self.org_id),
            )

    async def verify(self, stub: matching_pb2_grpc.MatchingServiceAsyncStub, i: int) -> None:
        await stub.Verify(
            matching_pb2.VerifyRequest(probe=self.embedding(i), customer_id=self.customer_id(i)),
            metadata=caller_metadata(self.org_id),
        )


def publish(path: Path, results: dict, report: Iterable[str]) -> None:
    """Write the results as JSON to `path` (its folder is created) and print the report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(report))


def alternating(
    rounds: int, items: Sequence[Item], sides: Sequence[Side]
) -> Iterator[tuple[Item, list[Side]]]:
    """Every item in every round, with the sides to run on it in the order to run them:
    swapped from one item to the next and from one round to the next, so that no side
    always goes first (warm caches, a busier moment) when the sides are compared."""
    for round_ in range(rounds):
        for position, item in enumerate(items):
            yield item, list(sides) if (round_ + position) % 2 == 0 else list(reversed(sides))


def summarise(latencies_seconds: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_seconds)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 3),
    }


def machine_speed() -> float:
    """CPU seconds of a pure-Python 10M-iteration loop: a yardstick for
    comparing figures across machines (about 0.5 s on a current desktop core)."""
    started = time.process_time()
    total = 0
    for i in range(10_000_000):
        total += i
    return round(time.process_time() - started, 2)
