"""OpenTelemetry set-up and the trace context carried between processes.

Each process calls :func:`setup_tracing` once (OTEL_EXPORTER: none = the API's no-op tracer, otlp,
console).  Trace context crosses process boundaries as a W3C ``traceparent`` string: an API request's
span goes into the dial job's RQ meta and the call record (``CallRecord.traceparent``); the job's span
replaces it in the record when the job hands the call over; the voice worker that dials it parents
the call's span on it (:mod:`.call_traces`).

Log lines of a call name its call span (``trace_id``/``span_id``): :data:`call_spans` maps a live
call's id to its span context, kept by the call tracer.  Other lines name the span current in
their greenlet (an API request, a job), if any.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

from opentelemetry import context as otel_context, trace
from opentelemetry.trace import SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

_propagator = TraceContextTextMapPropagator()

#: live call id -> its call span's context (for the trace ids of the call's log lines)
call_spans: Dict[str, SpanContext] = {}


def setup_tracing(settings: Any, service: str) -> Optional[Any]:
    """Install this process's tracer provider per OTEL_EXPORTER; returns it (None for 'none').

    ``service`` names the process (voice, api, jobs) when OTEL_SERVICE_NAME is empty."""
    kind = getattr(settings, "otel_exporter", "none")
    if kind == "none":
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

    name = getattr(settings, "otel_service_name", "") or f"voiceagent-{service}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if kind == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_exporter_otlp_endpoint)))
    trace.set_tracer_provider(provider)
    log.info("tracing: %s spans of %s%s", kind, name,
             f" to {settings.otel_exporter_otlp_endpoint}" if kind == "otlp" else "")
    return provider


def tracer() -> trace.Tracer:
    """The tracer of whatever provider is installed now (a no-op one until :func:`setup_tracing`)."""
    return trace.get_tracer("voiceagent")


def ns(wall_seconds: float) -> int:
    """Wall-clock seconds as OpenTelemetry's nanoseconds."""
    return int(wall_seconds * 1e9)


def traceparent(span: Optional[trace.Span] = None) -> str:
    """The W3C traceparent of ``span`` (default: the current one); '' when there is no valid span."""
    ctx = trace.set_span_in_context(span) if span is not None else None
    carrier: Dict[str, str] = {}
    _propagator.inject(carrier, context=ctx)
    return carrier.get("traceparent", "")


def context_of(value: Optional[str]) -> otel_context.Context:
    """The context a traceparent string names (an empty context for '', None or a malformed value)."""
    if not value:
        return otel_context.Context()
    return _propagator.extract({"traceparent": value})


def context_of_headers(headers: Any) -> otel_context.Context:
    """The context an incoming HTTP request carries (``traceparent``/``tracestate`` headers)."""
    return _propagator.extract({k.lower(): v for k, v in headers.items()
                                if k.lower() in ("traceparent", "tracestate")})


def log_trace_ids(call_id: str) -> Tuple[str, str]:
    """(trace_id, span_id) in hex for a log line: the call's span, else the current span ('' if none)."""
    sc = call_spans.get(call_id) if call_id else None
    if sc is None:
        sc = trace.get_current_span().get_span_context()
    if not sc.is_valid:
        return "", ""
    return format(sc.trace_id, "032x"), format(sc.span_id, "016x")
