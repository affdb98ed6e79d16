"""OpenTelemetry tracing, on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set.

The standard `OTEL_*` variables configure the exporter (OTLP over HTTP), the service name and the batch
processor. Spans: one per request (this module's middleware, named by the route template), one per Airbyte
HTTP call (httpx instrumentation), one per connector run and Iceberg commit (`ingest.core.observe.span`),
and one per sync or import job, child of the request that enqueued it (its `traceparent` travels in the job's
args). Log lines written inside a span carry `trace_id` and `span_id`.
"""

import os
from contextlib import AbstractContextManager
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ingest.core import observe

_propagator = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None


class OtelTracer:
    """`ingest.core.observe.Tracer` on the OpenTelemetry SDK."""

    def __init__(self, provider: TracerProvider) -> None:
        self.tracer = provider.get_tracer("ingest")

    def span(self, name: str, attributes: dict[str, Any]) -> AbstractContextManager[Any]:
        return self.tracer.start_as_current_span(name, attributes=attributes)

    def continue_trace(self, name: str, traceparent: str | None) -> AbstractContextManager[Any]:
        parent = _propagator.extract({"traceparent": traceparent}) if traceparent else None
        return self.tracer.start_as_current_span(name, context=parent, kind=SpanKind.CONSUMER)

    def traceparent(self) -> str | None:
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        return carrier.get("traceparent")

    def trace_ids(self) -> tuple[str, str] | None:
        ctx = trace.get_current_span().get_span_context()
        if not ctx.is_valid:
            return None
        return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def enabled() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def install(service_name: str, exporter: SpanExporter | None = None) -> bool:
    """Turn tracing on for this process (once): with `exporter` (tests), or OTLP when the variables say so."""
    global _provider
    if _provider is not None:
        return True
    if exporter is None and not enabled():
        return False
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    observe.set_tracer(OtelTracer(provider))
    return True


def shutdown() -> None:
    """Flush the spans still queued (at process exit)."""
    if _provider is not None:
        _provider.shutdown()


def tracing_middleware(app: ASGIApp) -> ASGIApp:
    """A server span per request, continuing an incoming `traceparent`; named `METHOD /route/{template}`."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if _provider is None or scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        parent = _propagator.extract(headers)
        method = scope.get("method", "GET")
        route = scope.get("path_template") or scope.get("path", "")
        tracer = _provider.get_tracer("ingest.http")
        with tracer.start_as_current_span(
            f"{method} {route}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "http.route": route,
                "url.path": scope.get("path", ""),
            },
        ) as span:

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await app(scope, receive, capture)
            except Exception as exc:  # answered by the app's handler outside this middleware (401 from auth)
                status = int(getattr(exc, "status_code", 500))
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                raise

    return middleware
