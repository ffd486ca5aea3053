"""OpenTelemetry tracing: one tracer provider per process, W3C propagation.

Spans are exported over OTLP/gRPC when an endpoint is configured; otherwise
they are still created (so trace ids reach the logs and propagate) but not
exported. Span attributes hold ids and codes only, never personal data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

_provider: TracerProvider | None = None


def configure(
    service: str, otlp_endpoint: str = "", exporter: SpanExporter | None = None
) -> TracerProvider:
    """Install the process's tracer provider (first call wins)."""
    global _provider
    if _provider is not None:
        if exporter is not None:
            _provider.add_span_processor(BatchSpanProcessor(exporter))
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
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def tracer(name: str = "identity") -> trace.Tracer:
    return trace.get_tracer(name)


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
