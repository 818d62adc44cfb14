"""The metrics observers and hooks move the right series (read from the process registry): a turn's
stages one observation each, calls started/ended/duration, tools by name (an unknown name is
'unknown'), the API's request counter and queue depth on its /metrics page."""
import requests
from prometheus_client import REGISTRY
from pydantic import BaseModel

from voiceagent.calls.call_state import CallState, Direction
from voiceagent.calls.ports import CallInfo
from voiceagent.calls.turns import Turn
from voiceagent.dialog.tools import ToolContext, ToolRegistry, tool
from voiceagent.observability.call_metrics import TURN_STAGES, CallMetrics

from .conftest import sample, scrape

INFO = CallInfo(id="0f3c2b6e-2d4a-4c1e-9a8b-426614174001", direction=Direction.OUTBOUND, caller="", callee="+1555",
                node="fs1", worker="w1")


def value(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_turn_is_one_observation_per_stage_and_a_call_counts_once():
    stage_names = {"endpoint_wait_ms": "voiceagent_turn_endpoint_wait_seconds",
                   "stt_wait_ms": "voiceagent_turn_stt_seconds",
                   "llm_ttft_ms": "voiceagent_turn_llm_first_token_seconds",
                   "tts_first_ms": "voiceagent_turn_tts_first_audio_seconds",
                   "voice_to_voice_ms": "voiceagent_turn_voice_to_voice_seconds"}
    assert {k for k, _ in TURN_STAGES} == set(stage_names)
    before = {k: (value(f"{n}_count"), value(f"{n}_sum")) for k, n in stage_names.items()}
    started = value("voiceagent_calls_started_total", direction="outbound")
    ended = value("voiceagent_calls_ended_total", direction="outbound", outcome="answered")
    durations = value("voiceagent_call_duration_seconds_count", direction="outbound")
    speech = value("voiceagent_turns_total", kind="speech")
    m = CallMetrics()
    for state, at in ((CallState.REQUESTED, 10.0), (CallState.DIALING, 10.1), (CallState.ANSWERED, 12.0),
                      (CallState.ACTIVE, 12.1)):
        m.call_state(INFO, state, at)
    turn = Turn(index=1)
    turn.timings.update(endpoint_wait_ms=200.0, stt_wait_ms=100.0, llm_ttft_ms=300.0, tts_first_ms=50.0,
                        voice_to_voice_ms=800.0, _last_speech_wall=1.0)
    m.call_turn(INFO, turn)
    m.call_ended(INFO, cause="NORMAL_CLEARING", outcome="answered", ended_by="caller", at=42.0)
    for key, name in stage_names.items():
        count, total = value(f"{name}_count"), value(f"{name}_sum")
        assert count == before[key][0] + 1, name
        assert abs(total - before[key][1] - turn.timings[key] / 1000) < 1e-9, name  # seconds, not ms
    assert value("voiceagent_turns_total", kind="speech") == speech + 1
    assert value("voiceagent_calls_started_total", direction="outbound") == started + 1
    assert value("voiceagent_calls_ended_total", direction="outbound", outcome="answered") == ended + 1
    assert value("voiceagent_call_duration_seconds_count", direction="outbound") == durations + 1
    assert value("voiceagent_call_duration_seconds_bucket", direction="outbound", le="30.0") >= 1  # 30 s: answer→end


class ProbeArgs(BaseModel):
    fail: bool = False


@tool("telemetry_probe", "Fails when asked to.", ProbeArgs)
def _probe(args: ProbeArgs, ctx: ToolContext) -> str:
    if args.fail:
        raise RuntimeError("asked to fail")
    return "ok"


def test_tool_runs_count_by_name_errors_separately_and_a_made_up_name_as_unknown():
    reg = ToolRegistry([_probe])
    ctx = ToolContext()
    calls, errors = value("voiceagent_tool_calls_total", tool="telemetry_probe"), \
        value("voiceagent_tool_errors_total", tool="telemetry_probe")
    unknown = value("voiceagent_tool_calls_total", tool="unknown")
    timed = value("voiceagent_tool_duration_seconds_count", tool="telemetry_probe")
    assert reg.run("telemetry_probe", {}, ctx).ok
    assert not reg.run("telemetry_probe", {"fail": True}, ctx).ok
    assert not reg.run("send_email_to_everyone", {}, ctx).ok
    assert value("voiceagent_tool_calls_total", tool="telemetry_probe") == calls + 2
    assert value("voiceagent_tool_errors_total", tool="telemetry_probe") == errors + 1
    assert value("voiceagent_tool_duration_seconds_count", tool="telemetry_probe") == timed + 2
    assert value("voiceagent_tool_calls_total", tool="unknown") == unknown + 1
    assert value("voiceagent_tool_calls_total", tool="send_email_to_everyone") == 0.0


def test_the_api_serves_metrics_behind_its_token_with_requests_and_the_queue_depth(start_api):
    api = start_api()
    assert api.http.post(api.url + "/calls", json={"to": "+15550100"}).status_code == 202
    assert api.http.get(api.url + "/calls/not-a-call").status_code == 404
    assert requests.get(api.url + "/metrics", timeout=5).status_code == 401
    samples = scrape(api.url + "/metrics", headers=api.http.headers)
    assert sample(samples, "voiceagent_queue_depth", priority="high") == 1.0
    assert sample(samples, "voiceagent_queue_depth", priority="bulk") == 0.0
    assert sample(samples, "voiceagent_http_requests_total", method="POST", route="/calls", status="202") >= 1
    assert sample(samples, "voiceagent_http_requests_total", method="GET", route="/calls/<call_id>",
                  status="404") >= 1
    assert sample(samples, "voiceagent_http_requests_total", method="GET", route="/metrics", status="401") >= 1
    assert not any("not-a-call" in str(labels) for (_, labels) in samples)



def test_the_esl_gauge_follows_the_link_and_a_reconnect_is_counted(make_emulator, make_worker):
    from tests.fork_helpers import wait_until

    emu = make_emulator(switchname="fsm")
    w = make_worker([emu])
    node = w.nodes["fsm"]
    assert wait_until(lambda: value("voiceagent_esl_connected", node="fsm") == 1.0, 10)
    reconnects = value("voiceagent_esl_reconnects_total", node="fsm")
    emu.drop_connections()
    assert wait_until(lambda: not node.esl.connected, 10)
    assert node.esl.wait_connected(15), "the worker never reconnected"
    assert wait_until(lambda: value("voiceagent_esl_reconnects_total", node="fsm") == reconnects + 1, 10)
    assert value("voiceagent_esl_connected", node="fsm") == 1.0
