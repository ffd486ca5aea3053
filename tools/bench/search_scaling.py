#!/usr/bin/env python3
"""1:N search latency and recall against gallery size: exact vs approximate indexes.

    .venv/bin/python tools/bench/search_scaling.py [--sizes 1000,10000,100000,1000000]
        [--dimension 128]

Synthetic galleries of i.i.d. Gaussian unit vectors (no cluster structure:
the hard case for IVF and HNSW, whose recall on real face embeddings is
usually higher). Queries are the dedupe case: a gallery member seen again
through another photo (a unit vector at cosine 0.7 from it).

Indexes, all inner product on unit vectors (= cosine), searched one query at
a time on one thread (faiss.omp_set_num_threads(1)), like the service:

  exact   IndexFlatIP (what `MATCHING_INDEX_KIND=exact` runs)
  ivf     IndexIVFFlat, nlist = 4 sqrt(n), nprobe 8, 32 and 128 (`ivf`)
  hnsw    IndexHNSWFlat, M = 32, efConstruction 80, efSearch 64 and 256
          (no removal by id in FAISS's HNSW, so not offered by the service)
  pq+refine  IndexRefineFlat(IndexPQFastScan(d, d/8 x 4 bits)): every code
          scanned (d/16 bytes a vector, SIMD), the best k x k_factor re-ranked
          exactly against the float32 vectors (`--refine-factors`)

  service  the matching service's own gallery (services/matching/gallery.py,
          OrgGallery, `MATCHING_INDEX_KIND=pq_rerank`): PQ fast-scan
          candidates (max(k x factor, 100)) re-ranked by exact cosine against
          the stored float vectors, with removal by id; filled through
          `apply` and searched through `search` as the service does, so
          latency includes its Python work (`--service-factors`)

`--ivf-nlist`, `--ivf-nprobes` and `--ivf-train` (training sample, 0 = all) tune ivf;
`--indexes` picks which indexes run. "mem_mb" is the growth of this
process's resident memory over the index's build (a rough index size).

Reported per index: build (train + add) CPU seconds (one thread), p50/p95/p99 latency per
query (CPU time of the searching thread; wall-clock p50/p99 beside it),
duplicate recall@1 and @10 (the planted member ranked first / in the
top 10: the dedupe question) and the overlap of the top 10 with the exact
top 10 (on unstructured data the 9 non-duplicates are near-ties, so this
overlap says little about dedupe).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
from common import machine_speed

if TYPE_CHECKING:
    from services.matching.gallery import OrgGallery

ROOT = Path(__file__).resolve().parents[2]


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - start), d)).astype(np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def planted_queries(
    rng: np.random.Generator, gallery: np.ndarray, count: int, cosine: float
) -> tuple[np.ndarray, np.ndarray]:
    members = rng.choice(len(gallery), size=count, replace=False)
    base = gallery[members]
    noise = rng.standard_normal(base.shape).astype(np.float32)
    noise -= np.sum(noise * base, axis=1, keepdims=True) * base
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    return (cosine * base + math.sqrt(1 - cosine**2) * noise).astype(np.float32), members


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# Per-query CPU time of this thread (faiss searches on this thread with one
# OpenMP thread): on a shared, oversubscribed machine wall time mostly measures
# waiting for a core. Wall-clock percentiles are reported beside it.
WALL: list[float] = []


def timed_searches(
    search: Callable[[np.ndarray], Any], queries: np.ndarray
) -> tuple[list[float], list[Any]]:
    """`search` on each query in turn: its thread CPU time (and the wall time,
    in WALL) and what it answered."""
    latencies, answers = [], []
    WALL.clear()
    for query in queries:
        started, wall = time.thread_time(), time.perf_counter()
        answers.append(search(query))
        latencies.append(time.thread_time() - started)
        WALL.append(time.perf_counter() - wall)
    return latencies, answers


def measure(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[list[float], np.ndarray]:
    latencies, answers = timed_searches(
        lambda query: index.search(query.reshape(1, -1), k), queries
    )
    return latencies, np.vstack([labels[0] for _, labels in answers])


def measure_service(org: OrgGallery, queries: np.ndarray) -> tuple[list[float], np.ndarray]:
    """`measure` for the matching service's gallery: its top 10 of each query,
    as gallery row numbers (its enrollment ids are `enr_<row>`)."""
    latencies, answers = timed_searches(lambda query: org.search(query, 10), queries)
    return latencies, np.asarray([[int(h.enrollment_id[4:]) for h in hits] for hits in answers])


@dataclass
class Build:
    """An index's build: thread CPU seconds and the resident memory it added."""

    seconds: float = 0.0
    mem_mb: float = 0.0


@contextmanager
def timed_build(threads: int) -> Iterator[Build]:
    """Times the build inside the block on `threads` OpenMP threads; the
    searches after it run on one, like the service's."""
    faiss.omp_set_num_threads(threads)
    build = Build()
    before, started = rss_mb(), time.thread_time()
    yield build
    build.seconds, build.mem_mb = time.thread_time() - started, rss_mb() - before
    faiss.omp_set_num_threads(1)


@dataclass(frozen=True)
class Truth:
    """What every index of one gallery is scored against: the gallery's size,
    the rows the queries were planted from and the exact top 10 of each query."""

    size: int
    members: np.ndarray
    exact: np.ndarray


def row(name: str, build: Build, latencies: list[float], labels: np.ndarray, truth: Truth) -> dict:
    """One index's figures, printed as a JSON line as soon as they are known."""
    ordered = sorted(latencies)
    members, exact = truth.members, truth.exact
    overlap = np.mean(
        [len(set(a) & set(b)) / len(b) for a, b in zip(labels[:, :10], exact[:, :10], strict=True)]
    )
    made = {
        "index": name,
        "gallery": truth.size,
        "build_s": round(build.seconds, 2),
        "mem_mb": round(build.mem_mb),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 3),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 3),
        "wall_p50_ms": round(statistics.median(WALL) * 1000, 3),
        "wall_p99_ms": round(sorted(WALL)[int(0.99 * (len(WALL) - 1))] * 1000, 3),
        "duplicate_recall_at_1": round(float(np.mean(labels[:, 0] == members)), 4),
        "duplicate_recall_at_10": round(
            float(np.mean([m in row_ for row_, m in zip(labels[:, :10], members, strict=True)])), 4
        ),
        "overlap_at_10_vs_exact": round(float(overlap), 4),
    }
    print(json.dumps(made), flush=True)
    return made


def scored(name: str, index: faiss.Index, build: Build, queries: np.ndarray, truth: Truth) -> dict:
    """The row of a faiss index as it is set now (nprobe, k_factor, efSearch)."""
    latencies, labels = measure(index, queries, 10)
    return row(name, build, latencies, labels, truth)


def service_rows(
    args: argparse.Namespace, gallery: np.ndarray, queries: np.ndarray, truth: Truth
) -> list[dict]:
    import sys

    sys.path.insert(0, str(ROOT))
    from services.matching.gallery import GalleryEntry, OrgGallery

    size = len(gallery)
    with timed_build(args.build_threads) as build:
        org = OrgGallery(args.dimension, kind="pq_rerank", ivf_min_size=min(50_000, size))
        for start in range(0, size, 100_000):
            org.apply(
                GalleryEntry(f"enr_{i}", "", gallery[i])
                for i in range(start, min(size, start + 100_000))
            )
    made = []
    for factor in (int(f) for f in args.service_factors.split(",")):
        org.rerank_factor = factor
        latencies, results = measure_service(org, queries)
        name = f"service:{org.index_kind}/factor{factor}"
        made.append(row(name, build, latencies, results, truth))
    if args.service_dead:
        # Removed labels left in the codes (up to PQ_MAX_DEAD) widen each search;
        # one removal past the limit rebuilds the codes (timed).
        from services.matching.gallery import PQ_MAX_DEAD

        org.rerank_factor = 10
        planted = set(truth.members.tolist())
        gone = [i for i in range(size) if i not in planted][: min(args.service_dead, PQ_MAX_DEAD)]
        org.apply(GalleryEntry(f"enr_{i}", "", None) for i in gone)
        latencies, results = measure_service(org, queries)
        name = f"service:{org.index_kind}/factor10/dead{len(gone)}"
        made.append(row(name, build, latencies, results, truth))
        started = time.thread_time()
        org.apply(GalleryEntry(f"enr_{i}", "", None) for i in range(size - PQ_MAX_DEAD, size))
        rebuild = {"index": "service:rebuild_after_dead_limit", "gallery": size}
        rebuild["rebuild_cpu_s"] = round(time.thread_time() - started, 2)
        print(json.dumps(rebuild), flush=True)
        made.append(rebuild)
    del org
    return made


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--dimension", type=int, default=128)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--hnsw-max", type=int, default=1_000_000, help="largest gallery to build HNSW for"
    )
    parser.add_argument("--build-threads", type=int, default=1)
    parser.add_argument("--indexes", default="exact,ivf,hnsw,pq")
    parser.add_argument("--ivf-nprobes", default="8,32,128")
    parser.add_argument(
        "--ivf-nlist", type=int, default=0, help="ivf lists (0 = 4 sqrt(n), the service's rule)"
    )
    parser.add_argument(
        "--ivf-train", type=int, default=0, help="ivf training sample (0 = the whole gallery)"
    )
    parser.add_argument("--refine-factors", default="4,16")
    parser.add_argument(
        "--service-factors", default="10", help="MATCHING_RERANK_FACTOR values for `service`"
    )
    parser.add_argument(
        "--service-dead",
        type=int,
        default=0,
        help="`service`: also measure with this many removed labels (max 1,024) and the rebuild",
    )
    parser.add_argument(
        "--exact-latency-queries",
        type=int,
        default=1000,
        help="queries timed one by one on the exact index (recall uses all, batched)",
    )
    args = parser.parse_args()
    chosen = set(args.indexes.split(","))
    rng = np.random.default_rng(2026)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        gallery = unit_rows(rng, size, args.dimension)
        queries, members = planted_queries(rng, gallery, min(args.queries, size), 0.7)
        # The exact top 10 is the reference of every overlap figure (always computed).
        with timed_build(args.build_threads) as flat_build:
            flat = faiss.IndexFlatIP(args.dimension)
            flat.add(gallery)
        # The exact top 10 of every query in batches (BLAS; the same answers), and
        # single-query latency over the first --exact-latency-queries.
        exact = np.vstack(
            [flat.search(queries[i : i + 250], 10)[1] for i in range(0, len(queries), 250)]
        )
        truth = Truth(size, members, exact)
        latencies, _ = measure(flat, queries[: args.exact_latency_queries], 10)
        if "exact" in chosen:
            results.append(row("exact", flat_build, latencies, exact, truth))
            results[-1]["latency_queries"] = len(latencies)
        del flat

        if "ivf" in chosen:
            nlist = args.ivf_nlist or int(max(16, 4 * math.sqrt(size)))
            with timed_build(args.build_threads) as ivf_build:
                ivf = faiss.IndexIVFFlat(
                    faiss.IndexFlatIP(args.dimension),
                    args.dimension,
                    nlist,
                    faiss.METRIC_INNER_PRODUCT,
                )
                sample = gallery
                if args.ivf_train and args.ivf_train < size:
                    sample = gallery[rng.choice(size, size=args.ivf_train, replace=False)]
                ivf.train(sample)
                ivf.add(gallery)
            for nprobe in (int(n) for n in args.ivf_nprobes.split(",")):
                ivf.nprobe = nprobe
                name = f"ivf{nlist}/nprobe{nprobe}"
                results.append(scored(name, ivf, ivf_build, queries, truth))
            del ivf

        if "pq" in chosen:
            with timed_build(args.build_threads) as pq_build:
                codes = faiss.IndexPQFastScan(
                    args.dimension, args.dimension // 8, 4, faiss.METRIC_INNER_PRODUCT
                )
                refined = faiss.IndexRefineFlat(codes)
                refined.train(gallery[: min(size, 65_536)])
                refined.add(gallery)
            for factor in (float(f) for f in args.refine_factors.split(",")):
                refined.k_factor = factor
                name = f"pq{args.dimension // 8}x4fs+refine{factor:g}"
                results.append(scored(name, refined, pq_build, queries, truth))
            del refined, codes

        if "service" in chosen:
            results += service_rows(args, gallery, queries, truth)

        if "hnsw" in chosen and size <= args.hnsw_max:
            with timed_build(args.build_threads) as hnsw_build:
                hnsw = faiss.IndexHNSWFlat(args.dimension, 32, faiss.METRIC_INNER_PRODUCT)
                hnsw.hnsw.efConstruction = 80
                hnsw.add(gallery)
            for ef in (64, 256):
                hnsw.hnsw.efSearch = ef
                results.append(scored(f"hnsw32/ef{ef}", hnsw, hnsw_build, queries, truth))
            del hnsw
        del gallery
    print(
        json.dumps(
            {
                "dimension": args.dimension,
                "queries": args.queries,
                "python_10M_loop_s": machine_speed(),
                "faiss": faiss.__version__,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
