"""Prometheus metrics of every service and the gateway: the one catalogue.

Every metric the platform exports is declared here, in the process's default
registry, so each process serves the same names (a service that never
observes one exports its HELP and TYPE lines only, but for the failure
counters alerts page on: those export each label value at 0 from the start,
`PREINITIALISED`), and the rules, the dashboards and their test read one
list (`exported_names()`).

Labels are bounded by construction: service and RPC names come from the
contracts, routes are the contract's path templates (never the path), reasons
are the contract's reason codes, models are manifest ids, queues and targets
are the mesh's names. No customer, organisation, verification or request id
is ever a label value.

`serve(host, port)` starts the exposition on its own port (a thread of
prometheus-client's HTTP server), as `serve()` in identity_runtime.server and
the gateway do when `<PREFIX>_METRICS_PORT` is set.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Seconds. 0.3, 1 and 3 are SLO thresholds (seed 003 M4: <300 ms edge, <1 s
# cloud; seed 000: 3 s processing time, 2 s registry latency).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 0.75, 1.0, 2.0, 3.0, 5.0, 10.0)
MODEL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PROBABILITY_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
# Cosine similarity: impostors sit near 0, genuine pairs well above 0.3.
COSINE_BUCKETS = (-0.2, 0.0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

# --- RED per RPC (every gRPC service) and per route (the gateway) -------------

RPC_REQUESTS = Counter(
    "identity_rpc_requests",
    "gRPC calls served, by service, RPC (contract name) and status code",
    ["service", "rpc", "code"],
)
RPC_DURATION = Histogram(
    "identity_rpc_duration_seconds",
    "Time to answer a gRPC call, by service and RPC",
    ["service", "rpc"],
    buckets=LATENCY_BUCKETS,
)
RPC_IN_FLIGHT = Gauge("identity_rpc_in_flight", "gRPC calls being served", ["service"])
HTTP_REQUESTS = Counter(
    "identity_http_requests",
    "Gateway requests, by route template (never the path), method, HTTP status and gRPC code",
    ["route", "method", "status", "code"],
)
HTTP_DURATION = Histogram(
    "identity_http_request_duration_seconds",
    "Time the gateway took to answer, by route template and method",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
CLIENT_REQUESTS = Counter(
    "identity_client_requests",
    "Calls to another mesh service, by target service and status code",
    ["target", "code"],
)

# --- models ----------------------------------------------------------------------

MODEL_STAGE_DURATION = Histogram(
    "identity_model_stage_duration_seconds",
    "Inference time per model stage (manifest role, or ocr), model id and backend",
    ["stage", "model", "backend"],
    buckets=MODEL_BUCKETS,
)

# --- decisions -------------------------------------------------------------------

DECISIONS = Counter(
    "identity_decisions",
    "Decisions of the KYC steps and step-up, by step and outcome (allow or deny)",
    ["step", "outcome"],
)
DECISION_REASONS = Counter(
    "identity_decision_reasons",
    "Reason codes attached to decisions, by step and reason (contract codes)",
    ["step", "reason"],
)
LIVENESS_CHECKS = Counter(
    "identity_liveness_checks",
    "Liveness decisions, by purpose, outcome (live or not_live) and decision basis",
    ["purpose", "outcome", "basis"],
)
PAD_SCORE = Histogram(
    "identity_pad_live_score",
    "Presentation-attack detection live scores: each model's and the fused one",
    ["model"],
    buckets=PROBABILITY_BUCKETS,
)
MATCH_SCORE = Histogram(
    "identity_match_score",
    "1:1 match cosine scores, by reference source (dukcapil, ktp_extract, ...) and outcome",
    ["reference_source", "outcome"],
    buckets=COSINE_BUCKETS,
)


@functools.cache
def match_score(reference_source: str, outcome: str) -> Any:
    """MATCH_SCORE's child for these labels, looked up once (every Verify observes one)."""
    return MATCH_SCORE.labels(reference_source, outcome)


SHADOW_DECISIONS = Counter(
    "identity_shadow_decisions",
    "Candidate models scored in shadow on live traffic, by stage, candidate (model ids) "
    "and agreement with the live decision (agree, disagree, skipped, error)",
    ["stage", "candidate", "agreement"],
)
SHADOW_SCORE_SHIFT = Histogram(
    "identity_shadow_score_shift",
    "Candidate score minus live score on the same input, by stage and candidate",
    ["stage", "candidate"],
    buckets=(-0.5, -0.2, -0.1, -0.05, -0.02, 0.0, 0.02, 0.05, 0.1, 0.2, 0.5),
)
ENROLLMENTS = Counter("identity_enrollments", "Face references enrolled, by source", ["source"])
MODEL_INFO = Gauge(
    "identity_model_info",
    "1 for each model this process loaded: stage (manifest role), model id, model "
    "version and the process's rollout track (stable or canary: <PREFIX>_TRACK), so rules "
    "compare a canary's scores and errors with stable's (docs/runbooks/model-rollback.md)",
    ["stage", "model", "version", "track"],
)

# --- queues, dependencies, crypto, audit, database --------------------------------

QUEUE_DEPTH = Gauge(
    "identity_queue_depth",
    "Items waiting in a queue (audit_outbox: audit entries not yet appended; erasures; "
    "webhook_deliveries; face_match_jobs: Face Match jobs queued or being processed)",
    ["queue"],
)
QUEUE_OLDEST_AGE = Gauge(
    "identity_queue_oldest_age_seconds",
    "Age of the oldest item waiting in a queue (0 when empty)",
    ["queue"],
)
SEAL_FAILURES = Counter(
    "identity_seal_failures",
    "AES-256-GCM seal or open failures (operation: seal or open)",
    ["operation"],
)
AUDIT_APPEND_FAILURES = Counter(
    "identity_audit_append_failures",
    "Audit entries not written: stage store (the audit service's database) or "
    "relay (kyc-tier's outbox could not deliver)",
    ["stage"],
)
AUDIT_VERIFICATIONS = Counter(
    "identity_audit_chain_verifications",
    "Audit chain verifications, by result (intact or broken)",
    ["result"],
)

# Every label value of the counters that alerts read with `increase(...) > 0`
# (deploy/prometheus): each series is exported at 0 from the start, so the
# first failure is an increase. A series born at its first increment starts
# at 1 (or 21), and `increase()` over it is 0: the first burst after every
# restart would never page.
SEAL_OPERATIONS = ("seal", "open")
AUDIT_STAGES = ("store", "relay")
AUDIT_RESULTS = ("intact", "broken")
PREINITIALISED: tuple[tuple[Counter, tuple[str, ...]], ...] = (
    (SEAL_FAILURES, SEAL_OPERATIONS),
    (AUDIT_APPEND_FAILURES, AUDIT_STAGES),
    (AUDIT_VERIFICATIONS, AUDIT_RESULTS),
)


def _preinitialise() -> None:
    for counter, values in PREINITIALISED:
        for value in values:
            counter.labels(value)


_preinitialise()

# The label values of the breaker-state gauge.
BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}


class _Breaker(Protocol):
    name: str
    opens: int

    @property
    def state(self) -> str: ...


class _Pooled(Protocol):
    @property
    def dialect(self) -> str: ...

    def pool_status(self) -> tuple[int, int]: ...


class _LiveObjects(Collector):
    """Gauges read at scrape time from the objects that hold the state
    (circuit breakers, database pools), so a breaker turning half-open or a
    pool draining shows without anyone calling `set`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.breakers: weakref.WeakSet[Any] = weakref.WeakSet()
        self.databases: weakref.WeakSet[Any] = weakref.WeakSet()

    def describe(self) -> list[Metric]:
        return list(self._families([], []))

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            breakers = list(self.breakers)
            databases = list(self.databases)
        return self._families(breakers, databases)

    @staticmethod
    def _families(breakers: list[_Breaker], databases: list[_Pooled]) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "identity_circuit_breaker_state",
            "Circuit breaker to each mesh service: 0 closed, 1 half-open, 2 open",
            labels=["target"],
        )
        worst: dict[str, int] = {}
        for breaker in breakers:
            value = BREAKER_STATES[breaker.state]
            worst[breaker.name] = max(worst.get(breaker.name, 0), value)
        for target, value in sorted(worst.items()):
            state.add_metric([target], value)
        yield state
        # A breaker re-opening every few seconds reads 1 (half-open) at any
        # scrape that falls on a trial call; the count of openings misses none.
        opens = CounterMetricFamily(
            "identity_circuit_breaker_opens",
            "Times the circuit breaker to each mesh service went open "
            "(from closed, or from half-open after a failed trial)",
            labels=["target"],
        )
        counts: dict[str, int] = {}
        for breaker in breakers:
            counts[breaker.name] = counts.get(breaker.name, 0) + breaker.opens
        for target, count in sorted(counts.items()):
            opens.add_metric([target], count)
        yield opens
        in_use = GaugeMetricFamily(
            "identity_db_pool_connections_in_use",
            "Database connections checked out of the pool",
            labels=["dialect"],
        )
        capacity = GaugeMetricFamily(
            "identity_db_pool_capacity",
            "Connections the pool may hold at once (size plus overflow)",
            labels=["dialect"],
        )
        totals: dict[str, list[int]] = {}
        for database in databases:
            used, most = database.pool_status()
            row = totals.setdefault(database.dialect, [0, 0])
            row[0] += used
            row[1] += most
        for dialect, (used, most) in sorted(totals.items()):
            in_use.add_metric([dialect], used)
            capacity.add_metric([dialect], most)
        yield in_use
        yield capacity

    def watch_breaker(self, breaker: _Breaker) -> None:
        with self._lock:
            self.breakers.add(breaker)

    def watch_database(self, database: _Pooled) -> None:
        with self._lock:
            self.databases.add(database)


LIVE = _LiveObjects()
REGISTRY.register(LIVE)


def watch_breaker(breaker: _Breaker) -> None:
    LIVE.watch_breaker(breaker)


def watch_database(database: _Pooled) -> None:
    LIVE.watch_database(database)


@contextlib.contextmanager
def model_stage(stage: str, model: str, backend: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        MODEL_STAGE_DURATION.labels(stage, model, backend).observe(time.perf_counter() - started)


def set_queue(queue: str, depth: int, oldest: datetime | None, now: datetime) -> float:
    """A queue's depth and the age of its oldest item (0 when empty) into the
    queue gauges; the age in seconds is returned. A naive `oldest` (SQLite)
    is read in `now`'s zone."""
    age = 0.0
    if oldest is not None:
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=now.tzinfo)
        age = max(0.0, (now - oldest).total_seconds())
    QUEUE_DEPTH.labels(queue).set(depth)
    QUEUE_OLDEST_AGE.labels(queue).set(age)
    return age


def record_decision(step: str, allow: bool, reasons: Iterable[str]) -> None:
    DECISIONS.labels(step, "allow" if allow else "deny").inc()
    for reason in sorted(set(reasons)):
        DECISION_REASONS.labels(step, reason).inc()


# --- exposition ----------------------------------------------------------------------


@dataclass
class MetricsServer:
    """prometheus-client's exposition server on its own port."""

    server: Any
    thread: threading.Thread
    port: int

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve(host: str, port: int | None) -> MetricsServer | None:
    """Serve /metrics on host:port (0 picks a free port); None: port unset."""
    if port is None:
        return None
    try:
        server, thread = start_http_server(port, addr=host)
    except OSError as exc:
        raise OSError(f"metrics: cannot listen on {host}:{port} (is the port taken?)") from exc
    return MetricsServer(server, thread, int(server.server_port))


def exported_names() -> set[str]:
    """Every sample name this process can export (counters' `_total`,
    histograms' `_bucket`/`_sum`/`_count`...), for the rules' and dashboards' test."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        base = family.name
        if family.type == "counter":
            names.update({f"{base}_total", f"{base}_created"})
        elif family.type == "histogram":
            names.update({f"{base}_bucket", f"{base}_sum", f"{base}_count", f"{base}_created"})
        else:
            names.add(base)
        names.update(sample.name for sample in family.samples)
    return names
