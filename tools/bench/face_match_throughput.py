"""Face Match throughput: submissions completed per second, confirm-to-callback
latency, and the ratio between 1 and 2 worker processes.

    .venv/bin/python tools/bench/face_match_throughput.py [--jobs 40] [--out bench-results]

Per run: a scratch PostgreSQL schema; N worker processes
(`python -m services.face_match.worker_process`, one queue worker each, one
ONNX Runtime thread, polling every 50 ms); a callback receiver in this
process. This process creates `--jobs` submissions through the domain code
(selfie img2.jpg, reference: the synthetic KTP card), uploads both images
with their signed URLs, then confirms them all at once and records, per
submission, the time from its confirm to its signed callback arriving.
Throughput = jobs / (last callback - first confirm). Not a test: nothing
asserts a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from identity_store.db import Database  # noqa: E402
from services.face_match.bootstrap import image_seals  # noqa: E402
from services.face_match.bucket import LocalBucket, UploadSigner  # noqa: E402
from services.face_match.oauth import SigningKeys  # noqa: E402
from services.face_match.settings import FaceMatchSettings  # noqa: E402
from services.face_match.submissions import Submissions  # noqa: E402
from tests.support.face_match import KEK_KEYRING, CallbackReceiver  # noqa: E402
from tests.support.meshauth import service_env  # noqa: E402
from tools.bench.common import machine_speed, publish, scratch_schema  # noqa: E402

SELFIE = (ROOT / "tests/data/faces/img2.jpg").read_bytes()
REFERENCE = (ROOT / "tests/data/ktp/ktp_flat.png").read_bytes()
KEY = "b" * 40


def worker_env(url: str, bucket: Path, callback_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "FACE_MATCH_DATABASE_URL": url,
        "FACE_MATCH_BUCKET_DIR": str(bucket),
        "FACE_MATCH_UPLOAD_SIGNING_KEY": KEY,
        "FACE_MATCH_CALLBACK_SIGNING_KEY": KEY,
        "FACE_MATCH_OAUTH_CLIENT_PEPPER": KEY,
        "FACE_MATCH_OAUTH_SIGNING_KEYS": SigningKeys.generate(),
        "FACE_MATCH_KEK_KEYRING": KEK_KEYRING.to_json(),
        "FACE_MATCH_WORKERS": "1",
        "FACE_MATCH_INTRA_OP_THREADS": "1",
        "FACE_MATCH_JOB_POLL_SECONDS": "0.05",
        "FACE_MATCH_DEFAULT_CALLBACK_URL": callback_url,
        "FACE_MATCH_LOG_LEVEL": "WARNING",
        # The tests' mesh keys; no audit service runs: its relay retries quietly.
        **service_env("FACE_MATCH"),
    }


async def one_run(processes: int, jobs: int) -> dict:
    with scratch_schema() as url, tempfile.TemporaryDirectory() as tmp:
        bucket = Path(tmp) / "bucket"
        receiver = await CallbackReceiver().start()
        database = Database(url)
        store = LocalBucket(
            bucket,
            image_seals(
                FaceMatchSettings(
                    database_url=url,
                    upload_signing_key=KEY,
                    callback_signing_key=KEY,
                    oauth_client_pepper=KEY,
                    kek_keyring=KEK_KEYRING.to_json(),
                )
            ),
        )
        signer = UploadSigner(KEY, "http://bench", 10_000_000)
        submissions = Submissions(
            database,
            store,
            signer,
            clock=lambda: datetime.now(UTC),
            upload_url_seconds=600,
            ttl_seconds=3600,
            callback_signing_key=KEY,
        )
        names = [f"bench-{i}" for i in range(jobs)]
        for name in names:
            created = await submissions.create("org_bench", "bench", name, "KTP", "")
            for upload in created.uploads:
                parts = urlsplit(upload.url)
                query = parse_qs(parts.query)
                key = parts.path.split("/uploads/", 1)[1]
                data = SELFIE if upload.image == "selfie" else REFERENCE
                media = "image/jpeg" if upload.image == "selfie" else "image/png"
                await submissions.put_object(
                    key, int(query["expires"][0]), query["signature"][0], media, data
                )
        env = worker_env(url, bucket, receiver.url)
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "services.face_match.worker_process",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=ROOT,
            )
            for _ in range(processes)
        ]
        try:
            for child in children:  # each prints one line once its models are loaded
                assert child.stdout is not None
                line = await child.stdout.readline()
                if b"running" not in line:
                    rest = await child.stdout.read()
                    raise RuntimeError((line + rest).decode()[-2000:])
            confirmed: dict[str, float] = {}
            arrived: dict[str, float] = {}
            # Arrival times are taken when this loop wakes for each callback.
            receiver.received.clear()
            started = time.perf_counter()
            for name in names:
                confirmed[name] = time.perf_counter()
                await submissions.confirm("org_bench", "bench", name)
            while len(receiver.received) < jobs:
                receiver.arrived.clear()
                await asyncio.wait_for(receiver.arrived.wait(), 600)
                for event, _ in receiver.received:
                    arrived.setdefault(str(event["correlationId"]), time.perf_counter())
            finished = max(arrived.values())
        finally:
            for child in children:
                child.terminate()
            for child in children:
                await asyncio.wait_for(child.wait(), 30)
            await receiver.stop()
            database.dispose()
        latencies = sorted(arrived[n] - confirmed[n] for n in names)
        return {
            "processes": processes,
            "jobs": jobs,
            "per_second": round(jobs / (finished - started), 2),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 1),
            "callbacks": len(receiver.received),
        }


async def main_async(args: argparse.Namespace) -> int:
    speed = machine_speed()
    runs = [await one_run(n, args.jobs) for n in (1, 2)]
    ratio = round(runs[1]["per_second"] / runs[0]["per_second"], 2)
    report = [
        f"machine yardstick {speed} s (tools/bench/common.machine_speed); {os.cpu_count()} cores",
        "",
        "| worker processes | jobs | completed / s | confirm->callback p50 | p99 |",
        "|---|---|---|---|---|",
        *(
            f"| {r['processes']} | {r['jobs']} | {r['per_second']} | {r['p50_ms']} ms "
            f"| {r['p99_ms']} ms |"
            for r in runs
        ),
        "",
        f"2 processes / 1 process: x{ratio}",
    ]
    publish(
        args.out / "face_match_throughput.json",
        {"runs": runs, "ratio_2_to_1": ratio, "machine_speed": speed},
        report,
    )
    print(json.dumps(runs))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
