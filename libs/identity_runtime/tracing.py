"""OpenTelemetry tracing: one tracer provider per process, W3C propagation.

Spans are exported over OTLP/gRPC when an endpoint is configured. Without
an exporter, a call's span (`server_span`) is not recorded: it still has
its own span id in the caller's trace and the sampling decision the
provider's sampler makes, so what propagates downstream is the same, but
nothing is built that no one reads (recording cost ~40 us a call).
Span attributes hold ids and codes only, never personal data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, MutableMapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.util.types import Attributes

_provider: TracerProvider | None = None
# True once an exporter is added: only then are spans recorded.
_exporting = False
_ids = RandomIdGenerator()


def configure(
    service: str, otlp_endpoint: str = "", exporter: SpanExporter | None = None
) -> TracerProvider:
    """Install the process's tracer provider (first call wins)."""
    global _provider, _exporting
    if _provider is not None:
        if exporter is not None:
            _provider.add_span_processor(BatchSpanProcessor(exporter))
            _exporting = True
        return _provider
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "identity"})
    )
    if exporter is None and otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(
            endpoint=otlp_endpoint, insecure=not otlp_endpoint.startswith("https://")
        )
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
        _exporting = True
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def tracer(name: str = "identity") -> trace.Tracer:
    return trace.get_tracer(name)


def server_span(
    tracer: trace.Tracer, name: str, parent: Context, attributes: Attributes
) -> contextlib.AbstractContextManager[trace.Span]:
    """The span of a call served here, current while it is open: `tracer`'s
    recorded span when spans are exported (or before `configure`);
    otherwise a non-recording span with a span id of its own, in the
    caller's trace (`parent`) or a new one, sampled as the provider decides."""
    if _exporting or _provider is None:
        return tracer.start_as_current_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
    caller = trace.get_current_span(parent).get_span_context()
    trace_id = caller.trace_id if caller.is_valid else _ids.generate_trace_id()
    decision = _provider.sampler.should_sample(
        parent, trace_id, name, SpanKind.SERVER, attributes
    ).decision
    own = SpanContext(
        trace_id,
        _ids.generate_span_id(),
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if decision.is_sampled() else 0),
        trace_state=caller.trace_state if caller.is_valid else None,
    )
    return trace.use_span(NonRecordingSpan(own), end_on_exit=True)


def extract(metadata: Iterable[tuple[str, str | bytes]]) -> Context:
    """OpenTelemetry context from incoming gRPC metadata (traceparent)."""
    carrier = {k: v for k, v in metadata if isinstance(v, str)}
    return propagate.extract(carrier)


def inject(carrier: MutableMapping[str, str]) -> MutableMapping[str, str]:
    propagate.inject(carrier)
    return carrier


def current_trace_id() -> str:
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else ""


def attributes(values: Mapping[str, object]) -> dict[str, str | int | float | bool]:
    return {k: v if isinstance(v, (str, int, float, bool)) else str(v) for k, v in values.items()}
