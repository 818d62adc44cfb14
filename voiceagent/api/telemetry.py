"""The API's telemetry: a span and two metrics per request, and ``GET /metrics``.

Each request runs in a server span named after its route (``POST /calls``), a child of the
``traceparent`` the client sent, if any; it is the current span while the view runs, so a call placed
by the view carries it into the dial job and the call record (:mod:`..observability.tracing`).

``/metrics`` is Prometheus' text format: this process's metrics (requests, and whatever else it
counts) plus ``voiceagent_queue_depth``, read from Redis at each scrape.  It needs the API token like
every operation but /health (Prometheus: ``authorization: {credentials: <API_TOKEN>}``).
"""
from __future__ import annotations

import time
from typing import Any, Optional

from flask import Blueprint, Flask, Response, current_app, g, request
from opentelemetry import context as otel_context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..observability.ops_metrics import HTTP_DURATION, HTTP_REQUESTS, QueueDepthCollector
from ..observability.tracing import context_of_headers, tracer
from .openapi import operation

bp = Blueprint("metrics", __name__)

_REGISTRY_KEY = "voiceagent.metrics_registry"


def _route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"  # a 404 path is the client's words: not a label


def _begin() -> None:
    g.telemetry_started = time.perf_counter()
    span = tracer().start_span(f"{request.method} {_route()}", context=context_of_headers(request.headers),
                               kind=SpanKind.SERVER,
                               attributes={"http.request.method": request.method, "http.route": _route()})
    g.telemetry_span = span
    g.telemetry_token = otel_context.attach(trace.set_span_in_context(span))


def _finish(response: Response) -> Response:
    started: Optional[float] = g.pop("telemetry_started", None)
    if started is not None:
        route = _route()
        HTTP_REQUESTS.labels(method=request.method, route=route, status=str(response.status_code)).inc()
        HTTP_DURATION.labels(method=request.method, route=route).observe(time.perf_counter() - started)
    span = g.get("telemetry_span")
    if span is not None:
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 500:
            span.set_status(Status(StatusCode.ERROR))
    return response


def _teardown(exc: Optional[BaseException]) -> None:
    span = g.pop("telemetry_span", None)
    token = g.pop("telemetry_token", None)
    if span is not None:
        if exc is not None:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        span.end()
    if token is not None:
        otel_context.detach(token)


def install(app: Flask, depth: Any) -> None:
    """Trace and count ``app``'s requests; ``depth()`` gives the queue depth per priority for /metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueDepthCollector(depth))
    app.extensions[_REGISTRY_KEY] = registry
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_teardown)
    app.register_blueprint(bp)


@bp.get("/metrics")
@operation("Prometheus metrics of this API process and the call queue's depth", responses={200: None},
           content_type="text/plain")
def metrics() -> Response:
    body = generate_latest(REGISTRY) + generate_latest(current_app.extensions[_REGISTRY_KEY])
    return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0], headers={"Content-Type": CONTENT_TYPE_LATEST})
