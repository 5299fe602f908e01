"""OpenTelemetry: one SERVER span per HTTP request, one span per GraphQL operation and one per resource access,
never one per field.

The request span joins the caller's trace when the request carries a W3C ``traceparent`` (and ``tracestate``);
a malformed one starts a new trace, never an error. Its attributes are the stable HTTP semantic conventions,
without the query string: a GET may carry variables, and variables carry ID numbers.

Span attributes carry the facts of the access record but never a key value (an ID number, a credit code, a
filter value, a variable, the application key): those stay in the platform database. So no span records an
exception (its message may quote a filter value, its stack trace is of no use to an operator); a refusal sets
the span's status to its code and nothing else. Spans can be dropped under load, and the caller's sampling flag
or the sampler may decide not to record them: the access records never depend on either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.semconv.attributes import (
    client_attributes,
    error_attributes,
    http_attributes,
    network_attributes,
    server_attributes,
    url_attributes,
    user_agent_attributes,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.requests import Request

from govshare.config import Settings
from govshare.errors import GovshareError

# Only W3C trace context (traceparent, tracestate): not the global propagator, which OTEL_PROPAGATORS may extend
# with baggage (caller-chosen key-value pairs that would then ride along in our context).
PROPAGATOR = TraceContextTextMapPropagator()
USER_AGENT_LIMIT = 256  # characters of User-Agent kept on the request span
KNOWN_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})


def make_tracer(settings: Settings, exporter: SpanExporter | None = None) -> tuple[Tracer, TracerProvider]:
    """A tracer of govshare's own provider (not the global one), exporting as configured. The sampler is
    OpenTelemetry's default (``parentbased_always_on``: it follows the caller's sampled flag), or the one
    ``OTEL_TRACES_SAMPLER`` names. With no exporter (``trace_exporter = none``) nothing would receive a span: none
    is recorded (``ALWAYS_OFF``), but every span still has its ids, in the caller's trace when it sent one, so the
    access records and log lines carry the same trace ids (recording three spans a request, attributes and all,
    was 4.5% of a lookup's CPU under 32 clients)."""
    if exporter is None and settings.trace_exporter == "none":
        silent = TracerProvider(sampler=ALWAYS_OFF)
        return silent.get_tracer("govshare"), silent
    provider = TracerProvider(resource=Resource.create({"service.name": "govshare"}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif settings.trace_exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    elif settings.trace_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    return provider.get_tracer("govshare"), provider


def caller_context(headers: Mapping[str, str]) -> Context:
    """The caller's trace context from its ``traceparent`` and ``tracestate`` headers; an empty context (a new
    root trace) when there is none or it is malformed."""
    return PROPAGATOR.extract(carrier=headers)


def refusal_code(exc: BaseException) -> str:
    """What a span may say of an exception: a govshare code, else the exception's class name (never its text)."""
    if isinstance(exc, GovshareError):
        return exc.code
    extensions = getattr(exc, "extensions", None)  # a GraphQLError made from a refusal carries its code
    code = extensions.get("code") if isinstance(extensions, dict) else None
    if isinstance(code, str):
        return code
    original = getattr(exc, "original_error", None)
    if isinstance(original, GovshareError):
        return original.code
    return type(exc).__name__


@contextlib.contextmanager
def span(
    tracer: Tracer,
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    context: Context | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A current span that never records an exception: one raised through it sets the status to its code
    (``refusal_code``) and ``error.type`` to the same, and goes on."""
    with tracer.start_as_current_span(
        name,
        context=context,
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            code = refusal_code(exc)
            current.set_attribute(error_attributes.ERROR_TYPE, code)
            current.set_status(Status(StatusCode.ERROR, code))
            raise


def http_server_attributes(request: Request, route: str) -> dict[str, Any]:
    """The request span's attributes by the stable HTTP semantic conventions. Never ``url.query`` nor
    ``url.full``: the query string of a GET carries the operation's variables."""
    method, scheme = request.method, request.url.scheme
    attributes: dict[str, Any] = {
        http_attributes.HTTP_REQUEST_METHOD: method if method in KNOWN_METHODS else "_OTHER",
        url_attributes.URL_SCHEME: scheme,
        url_attributes.URL_PATH: request.url.path,
        http_attributes.HTTP_ROUTE: route,
    }
    if method not in KNOWN_METHODS:
        attributes[http_attributes.HTTP_REQUEST_METHOD_ORIGINAL] = method[:32]
    host = request.url.hostname  # from the Host header, as the conventions ask of a server
    if host:
        attributes[server_attributes.SERVER_ADDRESS] = host
        attributes[server_attributes.SERVER_PORT] = request.url.port or (443 if scheme in ("https", "wss") else 80)
    if request.client is not None and request.client.host:
        attributes[client_attributes.CLIENT_ADDRESS] = request.client.host
    user_agent = request.headers.get("user-agent")
    if user_agent:
        attributes[user_agent_attributes.USER_AGENT_ORIGINAL] = user_agent[:USER_AGENT_LIMIT]
    http_version = request.scope.get("http_version")
    if isinstance(http_version, str) and http_version:
        attributes[network_attributes.NETWORK_PROTOCOL_VERSION] = http_version
    return attributes


@contextlib.contextmanager
def request_span(tracer: Tracer, request: Request, route: str) -> Iterator[Span]:
    """The SERVER span of one HTTP request, ``{method} {route}`` (``POST /graphql``), in the caller's trace when
    it sent one; ``end_http_server_span`` gives it the response's status."""
    method = request.method if request.method in KNOWN_METHODS else "HTTP"
    with span(
        tracer,
        f"{method} {route}",
        kind=SpanKind.SERVER,
        context=caller_context(request.headers),
        attributes=http_server_attributes(request, route),
    ) as current:
        yield current


def end_http_server_span(current: Span, status_code: int) -> None:
    """The response's status on the request span: an error (by the conventions, for a server) only from 500 on."""
    current.set_attribute(http_attributes.HTTP_RESPONSE_STATUS_CODE, status_code)
    if status_code >= 500:
        current.set_attribute(error_attributes.ERROR_TYPE, str(status_code))
        current.set_status(Status(StatusCode.ERROR))
