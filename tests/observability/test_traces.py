"""Traces: a turn's spans laid out from its timings; the trace context carried from an API request into
its dial job, the call record and the call the voice worker places (one trace, parent by parent)."""
import gevent
import pytest

from tests.fork_helpers import wait_until
from voiceagent.calls.call_state import CallState, Direction
from voiceagent.calls.ports import CallInfo
from voiceagent.calls.turns import Turn
from voiceagent.jobs import dial
from voiceagent.jobs.dispatch import dial_job_id
from voiceagent.jobs.queues import Queues
from voiceagent.jobs.rq_worker import QueueWorker
from voiceagent.observability.call_traces import CallTracer
from voiceagent.records.models import Outcome

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def _by_name(finished, name):
    return [s for s in finished if s.name == name]


def test_a_turns_spans_are_laid_out_from_its_end_of_turn_and_timings(spans):
    info = CallInfo(id="0f3c2b6e-2d4a-4c1e-9a8b-426614174002", direction=Direction.INBOUND, caller="+15551230001",
                    callee="+15551230000", node="fs1", worker="w1",
                    trace_parent=f"00-{TRACE_ID}-{CLIENT_SPAN}-01")
    t = CallTracer()
    t.call_state(info, CallState.CONFIRMED, 1000.0)
    t.call_state(info, CallState.ACTIVE, 1000.5)
    turn = Turn(index=1, at=1010.0, heard="what time is it")
    turn.timings.update(endpoint_wait_ms=200.0, stt_wait_ms=100.0, stt_ms=150.0, llm_ttft_ms=300.0,
                        llm_first_sentence_ms=500.0, tts_first_ms=80.0, voice_to_voice_ms=900.0,
                        playback_start_ms=40.0)
    turn.tool_started("get_datetime", {})
    turn.tools[0].started_at = 1010.2
    turn.tool_finished("get_datetime", {"time": "10:30"}, True)
    turn.tools[0].seconds = 0.05
    t.call_turn(info, turn)
    t.call_ended(info, cause="NORMAL_CLEARING", outcome="answered", ended_by="caller", at=1020.0)
    finished = spans.get_finished_spans()
    (call,) = _by_name(finished, "call")
    (tspan,) = _by_name(finished, "turn")
    assert format(call.context.trace_id, "032x") == TRACE_ID and format(call.parent.span_id, "016x") == CLIENT_SPAN
    assert call.start_time == 1000 * 10**9 and call.end_time == 1020 * 10**9
    assert call.attributes["voiceagent.call.outcome"] == "answered" and "+15551230001" not in str(call.attributes)
    assert tspan.parent.span_id == call.context.span_id
    assert tspan.start_time == int(1009.8 * 1e9)  # the caller's last word: end of turn - endpoint wait
    assert tspan.attributes["voiceagent.voice_to_voice_ms"] == 900.0 and tspan.attributes["voiceagent.turn.index"] == 1
    stages = {s.name: s for s in finished if s.parent is not None and s.parent.span_id == tspan.context.span_id}
    assert set(stages) == {"endpoint", "stt", "llm", "tts", "tool:get_datetime", "playback"}, set(stages)

    def at(span):
        return round(span.start_time / 1e9, 3), round(span.end_time / 1e9, 3)

    assert at(stages["endpoint"]) == (1009.8, 1010.0)
    assert at(stages["stt"]) == (1010.0, 1010.1)
    assert at(stages["llm"]) == (1010.1, 1010.6) and stages["llm"].attributes["voiceagent.llm_ttft_ms"] == 300.0
    assert at(stages["tts"]) == (1010.6, 1010.68)
    assert at(stages["tool:get_datetime"]) == (1010.2, 1010.25)
    assert at(stages["playback"]) == (1010.7, 1010.74)
    assert all(s.context.trace_id == call.context.trace_id for s in finished)


@pytest.fixture
def in_process_jobs(redis_prefix, monkeypatch):  # noqa: F811
    """Runs this prefix's queued jobs in this process (the dial job reads REDIS_PREFIX like an RQ worker)."""
    import redis

    monkeypatch.setenv("REDIS_PREFIX", redis_prefix)
    dial._runtime.cache_clear()
    conn = redis.Redis()
    workers = []

    def run():
        w = QueueWorker(Queues(conn, redis_prefix).all(), connection=conn, heartbeat_seconds=1)
        workers.append(w)
        w.work(burst=True, with_scheduler=False)

    yield run
    dial._runtime.cache_clear()


def test_an_api_request_its_dial_job_and_the_call_it_places_are_one_trace(
        make_emulator, make_worker, start_api, in_process_jobs, spans):
    emu = make_emulator(speed=4.0)
    emu.script_destination("+15550401", outcome="answer", ring_seconds=0.2)
    w = make_worker([emu], originate_gateway="carrier1")
    api = start_api()
    r = api.http.post(api.url + "/calls", json={"to": "+15550401", "message": "Hello"},
                      headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"})
    assert r.status_code == 202, r.text
    call_id = r.json()["id"]
    queued = api.client.get(call_id)
    (req_span,) = [s for s in spans.get_finished_spans() if s.name == "POST /calls"]
    assert format(req_span.context.trace_id, "032x") == TRACE_ID
    assert format(req_span.parent.span_id, "016x") == CLIENT_SPAN
    assert queued.traceparent == f"00-{TRACE_ID}-{format(req_span.context.span_id, '016x')}-01"
    from rq.job import Job

    assert Job.fetch(dial_job_id(call_id), connection=api.client.r).meta["traceparent"] == queued.traceparent
    in_process_jobs()
    rec = api.client.wait(call_id, timeout=40)
    assert rec.outcome == Outcome.ANSWERED and rec.worker == w.worker_id, rec
    assert wait_until(lambda: any(s.name == "call" for s in spans.get_finished_spans()), 10)
    gevent.sleep(0)
    finished = spans.get_finished_spans()
    (job_span,) = _by_name(finished, "job dial_job")
    (call,) = [s for s in finished if s.name == "call" and s.attributes["voiceagent.call.id"] == call_id]
    assert job_span.parent.span_id == req_span.context.span_id
    assert call.parent.span_id == job_span.context.span_id
    assert rec.traceparent.split("-")[2] == format(job_span.context.span_id, "016x")
    turns = [s for s in finished if s.name == "turn" and s.parent.span_id == call.context.span_id]
    assert turns and turns[0].attributes["voiceagent.turn.kind"] == "greeting"
    assert {format(s.context.trace_id, "032x") for s in (req_span, job_span, call, *turns)} == {TRACE_ID}
    assert call.attributes["voiceagent.call.direction"] == "outbound"


def test_otel_exporter_otlp_posts_spans_console_prints_them_none_installs_nothing():
    import json
    import os
    import subprocess
    import sys

    code = """
from voiceagent.config import TracingSettings, load_sections
from voiceagent.observability.tracing import setup_tracing, tracer
s = load_sections(TracingSettings)
provider = setup_tracing(s, "voice")
with tracer().start_as_current_span("probe") as span:
    span.set_attribute("voiceagent.probe", 1)
if provider is not None:
    provider.force_flush()
print("provider:", type(provider).__name__)
"""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def run(**env):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root,
                           env=dict(os.environ, PYTHONPATH=root, **env))
        assert r.returncode == 0, r.stderr[-2000:]
        return r.stdout

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from tests.webhooks.conftest import Receiver

    collector = Receiver()  # a real HTTP server taking the OTLP/HTTP POSTs
    try:
        assert "provider: TracerProvider" in run(OTEL_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=collector.url)
        assert collector.got, "no spans were posted to the collector"
        headers = {k.lower(): v for k, v in collector.got[0].headers.items()}
        assert headers["content-type"] == "application/x-protobuf"
        sent = ExportTraceServiceRequest.FromString(collector.got[0].body)
        (scope,) = sent.resource_spans[0].scope_spans
        assert [sp.name for sp in scope.spans] == ["probe"]
    finally:
        collector.server.shutdown()
        collector.server.server_close()
    out = run(OTEL_EXPORTER="console", OTEL_SERVICE_NAME="probe-service")
    body = out[:out.index("provider:")]
    span = json.loads(body)
    assert span["name"] == "probe" and span["attributes"] == {"voiceagent.probe": 1}
    assert span["resource"]["attributes"]["service.name"] == "probe-service"
    assert run(OTEL_EXPORTER="none").strip() == "provider: NoneType"
