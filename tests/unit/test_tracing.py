"""A served call's span: recorded only when spans are exported; either way
its own span id in the caller's trace, so propagation does not change."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from identity_runtime import tracing

pytestmark = pytest.mark.unit

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
ATTRIBUTES = {"rpc.system": "grpc", "identity.request_id": "req-1"}


def _caller(flags: str = "01"):
    return tracing.extract([("traceparent", f"00-{TRACE_ID}-{CALLER_SPAN}-{flags}")])


def _propagated() -> list[str]:
    return tracing.inject({})["traceparent"].split("-")


@pytest.fixture
def not_exporting(monkeypatch) -> TracerProvider:
    provider = TracerProvider()
    monkeypatch.setattr(tracing, "_provider", provider)
    monkeypatch.setattr(tracing, "_exporting", False)
    return provider


def test_without_an_exporter_the_span_is_not_recorded_but_has_its_own_id(not_exporting) -> None:
    tracer = not_exporting.get_tracer("t")
    with tracing.server_span(tracer, "Matching/Verify", _caller(), ATTRIBUTES) as span:
        assert not span.is_recording()
        _version, trace_id, span_id, flags = _propagated()
    assert (trace_id, flags) == (TRACE_ID, "01")
    assert span_id not in (CALLER_SPAN, "0" * 16)
    assert format(span.get_span_context().span_id, "016x") == span_id


def test_without_an_exporter_the_callers_decision_not_to_sample_holds(not_exporting) -> None:
    tracer = not_exporting.get_tracer("t")
    with tracing.server_span(tracer, "Matching/Verify", _caller("00"), ATTRIBUTES):
        _version, trace_id, _span_id, flags = _propagated()
    assert (trace_id, flags) == (TRACE_ID, "00")


def test_without_a_caller_trace_a_new_one_starts(not_exporting) -> None:
    tracer = not_exporting.get_tracer("t")
    with tracing.server_span(tracer, "Matching/Verify", tracing.extract([]), ATTRIBUTES):
        _version, trace_id, span_id, flags = _propagated()
    assert trace_id != "0" * 32 and span_id != "0" * 16
    assert flags == "01"  # the default sampler samples a new trace


def test_with_an_exporter_the_span_is_recorded_under_the_callers(monkeypatch) -> None:
    provider, exported = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    monkeypatch.setattr(tracing, "_provider", provider)
    monkeypatch.setattr(tracing, "_exporting", True)
    tracer = provider.get_tracer("t")
    with tracing.server_span(tracer, "Matching/Verify", _caller(), ATTRIBUTES) as span:
        assert span.is_recording()
    (finished,) = exported.get_finished_spans()
    assert format(finished.context.trace_id, "032x") == TRACE_ID
    assert format(finished.parent.span_id, "016x") == CALLER_SPAN
    assert finished.attributes["identity.request_id"] == "req-1"
