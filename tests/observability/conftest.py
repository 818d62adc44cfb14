"""Fixtures for the observability tests: the e2e stack (real models, emulator, worker), a scripted
LLM, and an in-memory span exporter installed once as this process's tracer provider (it records
only while a test asks for spans, so other tests' spans do not pile up)."""
import io
import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ..api.conftest import start_api  # noqa: F401 - fixture
from ..calls.conftest import make_emulator, make_worker, redis_prefix  # noqa: F401 - fixtures
from ..e2e.conftest import llm, make_stack, make_voice, models, voice  # noqa: F401 - fixtures


class _Recording(SimpleSpanProcessor):
    """Hands finished spans to the exporter only while ``on`` (a test's ``spans`` fixture)."""

    on = False

    def on_end(self, span):
        if self.on:
            super().on_end(span)


_EXPORTER = InMemorySpanExporter()
_PROCESSOR = _Recording(_EXPORTER)


@pytest.fixture(scope="session")
def _provider():
    provider = TracerProvider()
    provider.add_span_processor(_PROCESSOR)
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        pytest.fail("another tracer provider was installed first in this process")
    return provider


@pytest.fixture
def spans(_provider):
    """The in-memory exporter, recording for this test only."""
    _EXPORTER.clear()
    _PROCESSOR.on = True
    yield _EXPORTER
    _PROCESSOR.on = False
    _EXPORTER.clear()


class LogCapture:
    """What our handler writes (LOG_FORMAT json unless given), one line per record."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def lines(self):
        return [line for line in self.stream.getvalue().splitlines() if line.strip()]

    def records(self):
        return [json.loads(line) for line in self.lines()]


@pytest.fixture
def capture_logs():
    """``capture_logs(fmt="json", mask=True)``: our log handler on a buffer; the root logger restored after."""
    from voiceagent.observability.logs import setup_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)

    def start(fmt="json", mask=True, level="INFO"):
        stream = io.StringIO()
        setup_logging(level, fmt, stream, mask_numbers=mask)
        return LogCapture(stream)

    yield start
    for h in list(root.handlers):
        if getattr(h, "_voiceagent", False):
            root.removeHandler(h)
    for h in saved[0]:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(saved[1])


def scrape(url, headers=None):
    """The samples of a /metrics page: {(name, frozenset(labels.items())): value}."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    r = requests.get(url, headers=headers, timeout=10)
    assert r.status_code == 200, r.text[:500]
    out = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def sample(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
