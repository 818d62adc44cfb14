"""Prometheus metrics of the operator layer: tools, the call queue, webhook deliveries, API requests.

Tool names are a label (the registry's names: a fixed set per deployment); a name the LLM made up
is counted as ``unknown`` so a chatty model cannot grow the label set.  Routes are Flask's URL
rules (``/calls/<call_id>``), never the path a client sent.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

TOOL_CALLS = Counter("voiceagent_tool_calls_total", "Tool runs, by tool", ["tool"])
TOOL_ERRORS = Counter("voiceagent_tool_errors_total", "Tool runs that failed (error, timeout, bad arguments)",
                      ["tool"])
TOOL_DURATION = Histogram("voiceagent_tool_duration_seconds", "How long a tool ran", ["tool"],
                          buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))

QUEUE_WAIT = Histogram("voiceagent_queue_wait_seconds", "Queued call → handed to the voice workers (a free slot)",
                       ["priority"], buckets=(.05, .1, .5, 1, 5, 10, 30, 60, 120, 300, 900))
QUEUE_RETRIES = Counter("voiceagent_queue_retries_total",
                        "Retry attempts of queued calls handed to the voice workers", ["priority"])
WEBHOOK_DELIVERIES = Counter("voiceagent_webhook_deliveries_total",
                             "Status webhook delivery attempts, by result (delivered, retry, refused, final)",
                             ["result"])
WEBHOOK_FAILURES = Counter("voiceagent_webhook_failures_total",
                           "Status webhook deliveries that failed (retried later or given up)", ["final"])

HTTP_REQUESTS = Counter("voiceagent_http_requests_total", "API requests", ["method", "route", "status"])
HTTP_DURATION = Histogram("voiceagent_http_request_duration_seconds", "API request handling time",
                          ["method", "route"])


def tool_ran(name: str, known: bool, ok: bool, seconds: float) -> None:
    """One tool run (``known``: the registry has a tool of that name)."""
    label = name if known else "unknown"
    TOOL_CALLS.labels(tool=label).inc()
    if not ok:
        TOOL_ERRORS.labels(tool=label).inc()
    TOOL_DURATION.labels(tool=label).observe(max(0.0, seconds))


class QueueDepthCollector(Collector):
    """``voiceagent_queue_depth{priority}``, read from Redis at scrape time (calls queued, not yet handed
    over); a scrape while Redis is down reports nothing rather than failing the whole page."""

    def __init__(self, depth: Any) -> None:
        self._depth = depth  # () -> {"high": n, "bulk": n}

    def collect(self) -> Iterable[GaugeMetricFamily]:
        g = GaugeMetricFamily("voiceagent_queue_depth", "Calls waiting in the queue, by priority",
                              labels=["priority"])
        counts: Optional[dict] = None
        try:
            counts = self._depth()
        except Exception:  # noqa: BLE001 - Redis down: an empty family, the rest of the page still renders
            counts = None
        for priority, n in (counts or {}).items():
            g.add_metric([priority], float(n))
        yield g

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []  # collected on demand: never called at registration (it would hit Redis)
