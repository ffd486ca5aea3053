"""identity_circuit_breaker_opens_total: every time a breaker goes open
(from closed, or from half-open after a failed trial) is counted, so an
alert reading it cannot miss a breaker that re-opens between scrapes.

Black-box probe 7 (D11): the state gauge read 1 (half-open) at any scrape
that fell on a trial call, and `IdentityCircuitBreakerOpen` stayed pending
through a 6.5-minute matching outage."""

from __future__ import annotations

import grpc
from prometheus_client import REGISTRY

from identity_runtime.clients import CircuitBreaker

TARGET = "breaker_opens_under_test"


def opens_exported(target: str) -> float | None:
    return REGISTRY.get_sample_value("identity_circuit_breaker_opens_total", {"target": target})


def trial_due(breaker: CircuitBreaker) -> None:
    """Moves the breaker's opening back by its reset time (no clock waits)."""
    assert breaker.opened_at is not None
    breaker.opened_at -= breaker.reset_seconds


def test_each_opening_and_each_failed_trial_is_counted_once() -> None:
    breaker = CircuitBreaker(TARGET, failure_threshold=2, reset_seconds=5)
    assert opens_exported(TARGET) == 0
    breaker.record(grpc.StatusCode.UNAVAILABLE)
    assert (breaker.state, breaker.opens) == ("closed", 0)
    breaker.record(grpc.StatusCode.UNAVAILABLE)
    assert (breaker.state, breaker.opens) == ("open", 1)
    # A call already in flight failing while open keeps it open: no new opening.
    breaker.record(grpc.StatusCode.DEADLINE_EXCEEDED)
    assert (breaker.state, breaker.opens) == ("open", 1)
    # Failed trials re-open it: counted each time.
    for expected in (2, 3):
        trial_due(breaker)
        assert breaker.state == "half-open"
        breaker.before_call()
        breaker.record(grpc.StatusCode.DEADLINE_EXCEEDED)
        assert (breaker.state, breaker.opens) == ("open", expected)
    assert opens_exported(TARGET) == 3
    # A successful trial closes it; the count stays (a counter).
    trial_due(breaker)
    breaker.before_call()
    breaker.record(grpc.StatusCode.OK)
    assert (breaker.state, breaker.opens) == ("closed", 3)
    assert opens_exported(TARGET) == 3


def test_failures_the_callee_only_passed_on_open_nothing() -> None:
    breaker = CircuitBreaker(TARGET + "_passed_on", failure_threshold=1, origin="matching")
    breaker.record(grpc.StatusCode.UNAVAILABLE, origin="audit")
    breaker.record(grpc.StatusCode.NOT_FOUND)
    assert (breaker.state, breaker.opens) == ("closed", 0)
    assert opens_exported(TARGET + "_passed_on") == 0
