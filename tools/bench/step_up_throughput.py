"""Step-up throughput through the gateway at concurrency 1/2/4/8, CPU per step-up,
against the model floor and the same compute in-process, in one run.

    .venv/bin/python tools/bench/step_up_throughput.py [--concurrency 1,2,4,8]
        [--per-level 24] [--customers 8] [--database postgres|sqlite]
        [--baseline /path/to/other/.venv/bin/identity] [--variant NAME:KEY=VALUE,...]
        [--profile DIR]

"mesh": `identity up` (six services and the gateway as separate processes; with
`--database postgres` against a scratch PostgreSQL schema, as
tools/bench/step_up.py does). At each concurrency level `--per-level` step-ups
(`POST /api/identity/auth/step-up`, distinct customers, challenges fetched and
bundles signed before the clock starts, as the SDK does while it captures) are
sent by that many concurrent clients. Reported: step-ups/s, p50, p99, and the
mesh's CPU per step-up: the CPU time (utime + stime from /proc/<pid>/stat) of
every process of the mesh, summed, over the level, divided by the step-ups;
and the same per process (gateway, kyc_tier, capture_quality, liveness,
embedding, matching, audit, ...: the module each runs), each net of its own
idle CPU.
The idle mesh's background CPU (relays, sweeps), watched for a few seconds
before each level, is reported and subtracted ("net of idle"): at a low rate
it would otherwise dominate. CPU per step-up depends little on what else the
machine runs; the 2-core capacity is 2 / net CPU-per-step-up.

"in-process": tools/bench/step_up.py's InProcess (capture-quality's own
assessor: decode, detect the baseline frame whole and the flash frames near
its face, quality; PAD, flash, align + SFace, cosine), one thread, interleaved with the
mesh's concurrency-1 level request by request; its CPU per step-up is this
process's CPU time over those calls.

"model floor": YuNet on one frame + SFace + the two MiniFASNets, timed in this
process in the same run (interleaved likewise).

`--baseline` starts a second mesh from another checkout's `identity` (e.g. the
main branch's) and runs every level on both, alternating level by level, so
the "before" and "after" columns see the same machine load.

Writes JSON and a Markdown table to bench-results/. Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import httpx
import numpy as np
from common import ROOT, process_cpu_seconds, publish, variant

from identity_capture.sdk import SdkSigner
from identity_inference import images
from identity_inference.align import align_face
from identity_inference.manifest import load_catalogue, resolve_path
from identity_inference.pad import pad_crop
from tools.bench.step_up import (
    FACES,
    PROBES,
    InProcess,
    bundle_json,
    capture,
    enrol_distinct,
    enrol_images,
    jpeg,
    percentile,
    selfie_frame,
    start_mesh,
)

# Seconds the idle mesh is watched before each level (its background CPU).
IDLE_SECONDS = 3.0


def descendants(root: int) -> list[int]:
    """`root` and every process below it (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def process_name(pid: int) -> str:
    """The mesh role of a process: the module of `python -m <module>` with its
    package stripped (gateway, kyc_tier, liveness, ...), else the executable's name
    (the `identity up` supervisor, a worker process of a service)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    if "-m" in words[:-1]:
        return words[words.index("-m") + 1].rsplit(".", 1)[-1]
    if len(words) > 1 and words[1].endswith("identity"):
        return "supervisor"
    return Path(words[0]).name if words else "?"


def mesh_cpu_by_process(pids: list[int]) -> dict[str, float]:
    """CPU seconds so far of each mesh process, summed by role (process_name)."""
    totals: dict[str, float] = {}
    for pid in pids:
        try:
            cpu = process_cpu_seconds(pid)
        except OSError:
            continue
        name = process_name(pid)
        totals[name] = totals.get(name, 0.0) + cpu
    return totals


def mesh_cpu_seconds(pids: list[int]) -> float:
    return sum(mesh_cpu_by_process(pids).values())


def difference(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


@dataclass
class Mesh:
    name: str
    base: str
    key: str
    pid: int
    # (customer id, its device, its reference photo)
    customers: list[tuple[str, SdkSigner, np.ndarray]] = field(default_factory=list)
    levels: dict[int, dict[str, float]] = field(default_factory=dict)
    # concurrency -> process role -> CPU ms per step-up, net of that process's idle CPU
    breakdown: dict[int, dict[str, float]] = field(default_factory=dict)


def start(
    stack: ExitStack,
    name: str,
    database: str,
    identity: Path | None,
    extra: dict[str, str] | None = None,
) -> Mesh:
    base, key, pid = start_mesh(stack, database, extra, identity=identity)
    return Mesh(name, base, key, pid)


def enrol(mesh: Mesh, count: int, references: list[np.ndarray]) -> None:
    """`count` customers with distinct faces (step_up.enrol_distinct); each
    customer's step-ups are captures of its own reference photo."""
    with httpx.Client(
        base_url=mesh.base, headers={"Authorization": f"Bearer {mesh.key}"}, timeout=60
    ) as client:
        mesh.customers.extend(enrol_distinct(client, count, references, mesh.name))


@dataclass
class Prepared:
    body: dict
    baseline: bytes
    flashes: list[bytes]
    sequence: list[str]
    duration: int


async def flash_challenge(client: httpx.AsyncClient, customer: str) -> dict:
    """A step-up challenge for `customer`. Challenges are limited per customer
    (20 a minute): when the levels come fast (no baseline mesh between them),
    the limit's Retry-After is waited out, before the clock starts."""
    while True:
        reply = await client.post(
            "/api/identity/face/flash-challenge",
            json={"customerId": customer, "purpose": "CHALLENGE_PURPOSE_STEP_UP"},
        )
        if reply.status_code != 429:
            reply.raise_for_status()
            return reply.json()["challenge"]
        await asyncio.sleep(float(reply.headers.get("retry-after", "1")))


async def prepare(
    client: httpx.AsyncClient, mesh: Mesh, count: int, offset: int, probes: list[np.ndarray]
) -> list[Prepared]:
    """`count` signed step-up bodies with fresh challenges (before the clock)."""
    prepared = []
    for index in range(count):
        customer, signer, photo = mesh.customers[(offset + index) % len(mesh.customers)]
        challenge = await flash_challenge(client, customer)
        sequence = [c["hex"] for c in challenge["sequence"]]
        baseline, flashes = capture(photo, sequence)
        prepared.append(
            Prepared(
                {
                    "customerId": customer,
                    "challengeId": challenge["challengeId"],
                    "bundle": bundle_json(signer, challenge, baseline, flashes),
                },
                baseline,
                flashes,
                sequence,
                challenge.get("flashDurationMs", 400),
            )
        )
    return prepared


class Floor:
    """The models a step-up cannot avoid: YuNet on one frame, SFace, 2 x MiniFASNet."""

    def __init__(self, local: InProcess):
        self.local = local

    def run(self, baseline: bytes) -> float:
        local = self.local
        image = images.decode(baseline, local.limits)
        started = time.perf_counter()
        face = local.detector.detect(image)[0]
        local.pad.score(
            {s.scale: pad_crop(image, face.box, s.scale, s.size) for s in local.pad.specs}
        )
        local.embedder.embed([align_face(image, face.landmarks)])
        return (time.perf_counter() - started) * 1000


async def level(
    mesh: Mesh,
    concurrency: int,
    count: int,
    offset: int,
    probes: list[np.ndarray],
    local: InProcess,
    floor: Floor,
    reference: np.ndarray,
    side: dict[str, list[float]],
) -> None:
    limits = httpx.Limits(max_connections=concurrency + 2)
    async with httpx.AsyncClient(
        base_url=mesh.base,
        headers={"Authorization": f"Bearer {mesh.key}"},
        timeout=120,
        limits=limits,
    ) as client:
        work = await prepare(client, mesh, count, offset, probes)
        latencies: list[float] = []
        failures = 0
        queue: asyncio.Queue[Prepared] = asyncio.Queue()
        for item in work:
            queue.put_nowait(item)
        # Interleaved with the sequential level only: in-process step-up and floor.
        interleave = concurrency == 1 and not side.get("done")

        async def worker() -> None:
            nonlocal failures
            while not queue.empty():
                item = queue.get_nowait()
                started = time.perf_counter()
                reply = await client.post("/api/identity/auth/step-up", json=item.body)
                latencies.append((time.perf_counter() - started) * 1000)
                if reply.status_code != 200:
                    failures += 1
                    print(f"{mesh.name}: {reply.status_code} {reply.text[:200]}", file=sys.stderr)
                if interleave:
                    cpu, started = time.process_time(), time.perf_counter()
                    local.step_up(item.baseline, item.flashes, item.sequence, reference, 400)
                    side["local_ms"].append((time.perf_counter() - started) * 1000)
                    side["local_cpu_s"].append(time.process_time() - cpu)
                    side["floor_ms"].append(floor.run(item.baseline))

        pids = descendants(mesh.pid)
        # The mesh's background work (relays, sweeps, health) while idle.
        idle_cpu, idle_wall = mesh_cpu_by_process(pids), time.perf_counter()
        await asyncio.sleep(IDLE_SECONDS)
        idle = difference(mesh_cpu_by_process(pids), idle_cpu)
        idle_elapsed = time.perf_counter() - idle_wall
        idle_rate = sum(idle.values()) / idle_elapsed
        cpu_before, wall = mesh_cpu_by_process(pids), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - wall
        used = difference(mesh_cpu_by_process(pids), cpu_before)
        cpu = sum(used.values())
        background = idle_rate * elapsed
        # Each process's CPU per step-up, less its own idle rate over the level.
        per_process = {
            name: (seconds - idle.get(name, 0.0) / idle_elapsed * elapsed) * 1000 / len(latencies)
            for name, seconds in sorted(used.items())
        }
    if interleave:
        # The sequential level's wall time includes the in-process calls: its
        # rate is not a throughput; CPU per step-up and latency still hold.
        elapsed = sum(latencies) / 1000
    mesh.levels[concurrency] = {
        "step_ups": len(latencies),
        "failures": failures,
        "per_second": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "cpu_ms_per_step_up": cpu * 1000 / len(latencies),
        "idle_cpu_cores": idle_rate,
        # Less the idle mesh's background CPU over the same time.
        "net_cpu_ms_per_step_up": (cpu - background) * 1000 / len(latencies),
        "capacity_2_cores": 2 / (max(cpu - background, 1e-9) / len(latencies)),
    }
    mesh.breakdown[concurrency] = per_process
    row = mesh.levels[concurrency]
    print(
        f"{mesh.name:>8} c={concurrency}: {row['per_second']:5.1f}/s p50 {row['p50_ms']:6.0f} ms "
        f"p99 {row['p99_ms']:6.0f} ms cpu {row['cpu_ms_per_step_up']:5.0f} "
        f"(net of idle {row['net_cpu_ms_per_step_up']:5.0f}) ms/step-up "
        f"(2-core capacity {row['capacity_2_cores']:.1f}/s) failures {failures}",
        flush=True,
    )
    print(
        f"{'':>8}      per process (net of idle, ms/step-up): "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in per_process.items()),
        flush=True,
    )


def breakdown_table(meshes: list[Mesh]) -> list[str]:
    """Markdown: CPU ms per step-up of each mesh process (net of its idle CPU),
    one column per mesh and concurrency."""
    columns = [(m, c) for m in meshes for c in m.breakdown]
    names = sorted({n for m, c in columns for n in m.breakdown[c]})
    if not columns:
        return []
    lines = [
        "CPU ms per step-up by process, net of each process's idle CPU",
        "| process | " + " | ".join(f"{m.name} c={c}" for m, c in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name in [*names, "total"]:
        cells = [
            sum(m.breakdown[c].values()) if name == "total" else m.breakdown[c].get(name, 0.0)
            for m, c in columns
        ]
        lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in cells) + " |")
    return lines


async def run(args: argparse.Namespace) -> int:
    levels = [int(c) for c in args.concurrency.split(",")]
    yunet = cv2.FaceDetectorYN.create(
        str(resolve_path(load_catalogue()["yunet-2023mar"])), "", (320, 320), 0.6
    )
    references = enrol_images(yunet)
    enrol_image = references[0]
    probes = [selfie_frame(FACES / name, yunet) for name in PROBES]
    local = InProcess(1)
    floor = Floor(local)
    reference = local.embed(jpeg(enrol_image))
    side: dict[str, list[float]] = {"local_ms": [], "local_cpu_s": [], "floor_ms": []}
    with ExitStack() as stack:
        profiling = None
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            profiling = {
                "PYTHONPATH": str(Path(__file__).parent / "sampler"),
                "BENCH_PROFILE_DIR": str(args.profile.resolve()),
            }
        meshes = [start(stack, "after", args.database, None, profiling)]
        if args.baseline:
            meshes.insert(0, start(stack, "before", args.database, args.baseline))
        for name, extra in args.variant:
            meshes.append(start(stack, name, args.database, None, extra))
        for mesh in meshes:
            enrol(mesh, args.customers, references)
        if args.profile:
            (args.profile / "start").touch()  # the sampler counts from now on
        offset = 0
        for concurrency in levels:
            for mesh in meshes:
                await level(
                    mesh, concurrency, args.per_level, offset, probes, local, floor, reference, side
                )
            if concurrency == 1:
                side["done"] = [1.0]
            offset += args.per_level

    in_process = {
        "p50_ms": statistics.median(side["local_ms"]),
        "cpu_ms_per_step_up": statistics.median(side["local_cpu_s"]) * 1000,
    }
    model_floor = statistics.median(side["floor_ms"])
    results = {
        "database": args.database,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "in_process": in_process,
        "model_floor_p50_ms": model_floor,
        "meshes": {m.name: m.levels for m in meshes},
        "per_process": {m.name: m.breakdown for m in meshes},
    }
    lines = [
        f"{args.per_level} step-ups per level ({args.database}), load {os.getloadavg()}",
        f"model floor p50 {model_floor:.0f} ms; in-process p50 {in_process['p50_ms']:.0f} ms, "
        f"CPU {in_process['cpu_ms_per_step_up']:.0f} ms/step-up "
        f"(2-core capacity {2000 / in_process['cpu_ms_per_step_up']:.1f}/s)",
        "| mesh | concurrency | step-ups/s | p50 ms | p99 ms | CPU ms/step-up "
        "| net of idle | 2-core capacity/s |\n|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mesh in meshes:
        for concurrency, row in mesh.levels.items():
            lines.append(
                f"| {mesh.name} | {concurrency} | {row['per_second']:.1f} | {row['p50_ms']:.0f} | "
                f"{row['p99_ms']:.0f} | {row['cpu_ms_per_step_up']:.0f} | "
                f"{row['net_cpu_ms_per_step_up']:.0f} | {row['capacity_2_cores']:.1f} |"
            )
        if 1 in mesh.levels:
            p50 = mesh.levels[1]["p50_ms"]
            net = mesh.levels[1]["net_cpu_ms_per_step_up"]
            lines.append(
                f"{mesh.name}: c=1 p50 / model floor x{p50 / model_floor:.2f}, "
                f"/ in-process x{p50 / in_process['p50_ms']:.2f}; CPU mesh / in-process "
                f"x{net / in_process['cpu_ms_per_step_up']:.2f}"
            )
    lines.extend(breakdown_table(meshes))
    publish(args.out / "step_up_throughput.json", results, lines)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument("--per-level", type=int, default=24)
    parser.add_argument("--customers", type=int, default=8)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another checkout's identity executable, run side by side as 'before'",
    )
    parser.add_argument(
        "--variant",
        type=variant,
        action="append",
        default=[],
        help="NAME:KEY=VALUE,... another mesh of this checkout with those variables "
        "(e.g. threads:CAPTURE_QUALITY_INTRA_OP_THREADS=2)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="sample the CPU of this checkout's mesh processes into DIR "
        "(tools/bench/sampler; read with tools/bench/profile_report.py DIR); "
        "the sampling costs CPU, so take the figures from a run without it",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
