"""OpenTelemetry: one span per GraphQL operation and one per resource access, never one per field.

Span attributes carry the facts of the access record but never a key value (an ID number, a credit
code): those stay in the platform database. Spans can be dropped under load; records cannot.
"""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Tracer

from govshare.config import Settings


def make_tracer(settings: Settings, exporter: SpanExporter | None = None) -> tuple[Tracer, TracerProvider]:
    """A tracer of govshare's own provider (not the global one), exporting as configured."""
    provider = TracerProvider(resource=Resource.create({"service.name": "govshare"}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif settings.trace_exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    elif settings.trace_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    return provider.get_tracer("govshare"), provider
