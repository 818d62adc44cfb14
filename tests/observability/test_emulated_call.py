"""One emulated call (real VAD, Whisper, Piper; a scripted LLM) followed in its metrics (scraped from
the worker's /metrics over HTTP), its trace (call -> turn -> stage) and its log lines."""
from voiceagent.testing import llm_server as L

from ..e2e.conftest import place_call, speak, wait_for
from .conftest import free_port, sample, scrape

STAGE_HISTOGRAMS = ("voiceagent_turn_endpoint_wait_seconds", "voiceagent_turn_stt_seconds",
                    "voiceagent_turn_llm_first_token_seconds", "voiceagent_turn_tts_first_audio_seconds",
                    "voiceagent_turn_voice_to_voice_seconds")

NODE_LOGGERS = ("voiceagent.calls.node_link", "voiceagent.telephony.esl")


def _delta(after, before, name, **labels):
    return sample(after, name, **labels) - sample(before, name, **labels)


def test_a_call_moves_the_workers_metrics_active_one_then_zero_one_observation_per_turn(
        make_stack, voice, llm, models):
    llm.push(L.text("It is sunny and mild today."))
    port = free_port()
    stack = make_stack(voice, metrics_port=port)
    url = f"http://127.0.0.1:{port}/metrics"
    wid = stack.worker.worker_id
    before = scrape(url)
    assert sample(before, "voiceagent_esl_connected", node="fs1") == 1.0
    ch, sess = place_call(make_stack, voice, stack=stack)
    assert sample(scrape(url), "voiceagent_active_calls", worker=wid) == 1.0
    ch.say(speak(models, "What is the weather like?"))
    assert wait_for(lambda: voice.turns, 30), "the question was never answered"
    ch.hangup()
    assert wait_for(lambda: not stack.worker.sessions, 15), "the session never closed"
    after = scrape(url)
    assert sample(after, "voiceagent_active_calls", worker=wid) == 0.0
    assert len(voice.turns) == 1 and voice.turns[0].kind == "speech"
    for name in STAGE_HISTOGRAMS:
        assert _delta(after, before, f"{name}_count") == 1, name
    assert _delta(after, before, "voiceagent_turns_total", kind="speech") == 1
    assert _delta(after, before, "voiceagent_turns_total", kind="greeting") == 1
    assert _delta(after, before, "voiceagent_calls_started_total", direction="inbound") == 1
    assert _delta(after, before, "voiceagent_calls_ended_total", direction="inbound", outcome="answered") == 1
    assert _delta(after, before, "voiceagent_call_duration_seconds_count", direction="inbound") == 1
    assert _delta(after, before, "voiceagent_fork_connections_total") == 1
    assert sample(after, "voiceagent_fork_connections_open") == sample(before, "voiceagent_fork_connections_open")
    frames = _delta(after, before, "voiceagent_audio_frames_received_total")
    assert frames > 50 and _delta(after, before, "voiceagent_audio_received_bytes_total") >= frames * 320
    assert _delta(after, before, "voiceagent_audio_sent_bytes_total") > 0
    assert _delta(after, before, "voiceagent_inference_queue_wait_seconds_count", kind="stt") >= 1
    assert _delta(after, before, "voiceagent_inference_queue_wait_seconds_count", kind="tts") >= 1
    assert _delta(after, before, "voiceagent_event_loop_lag_seconds_count") > 0
    assert not any("call_id" in dict(labels) or ch.uuid in str(labels) for _, labels in after)


def test_a_calls_trace_is_call_turn_stage_and_its_log_lines_are_json_with_the_call_id(
        make_stack, voice, llm, models, spans, capture_logs):
    llm.push(L.tool_call("get_datetime", {}), L.text("It is half past ten in the morning."))
    stack = make_stack(voice)
    logs = capture_logs("json")
    ch, sess = place_call(make_stack, voice, stack=stack)
    ch.say(speak(models, "What time is it?"))
    assert wait_for(lambda: voice.turns, 30), "the question was never answered"
    ch.hangup()
    assert wait_for(lambda: not stack.worker.sessions, 15), "the session never closed"
    finished = spans.get_finished_spans()
    (call,) = [s for s in finished if s.name == "call" and s.attributes["voiceagent.call.id"] == ch.uuid]
    turns = sorted((s for s in finished if s.name == "turn" and s.parent.span_id == call.context.span_id),
                   key=lambda s: s.start_time)
    assert [t.attributes["voiceagent.turn.kind"] for t in turns] == ["greeting", "speech"]
    speech = turns[1]
    stages = {s.name: s for s in finished if s.parent is not None and s.parent.span_id == speech.context.span_id}
    assert {"endpoint", "stt", "llm", "tool:get_datetime", "tts"} <= set(stages), set(stages)
    for s in stages.values():
        assert speech.start_time <= s.start_time <= s.end_time <= speech.end_time, s.name
    for key in ("endpoint_wait_ms", "stt_wait_ms", "llm_ttft_ms", "llm_first_sentence_ms", "tts_first_ms",
                "voice_to_voice_ms"):
        assert speech.attributes[f"voiceagent.{key}"] >= 0, key
    assert stages["tool:get_datetime"].attributes["voiceagent.tool.ok"] is True
    assert call.attributes["voiceagent.call.outcome"] == "answered" and call.end_time >= speech.end_time

    records = logs.records()  # every line parses as one JSON object
    mine = [r for r in records if r.get("call_id") == ch.uuid]
    # while the call runs, every line of ours but the node's own (ESL, channel re-sync) is about the call
    call_related = [r for r in records if r["logger"].startswith("voiceagent.")
                    and not r["logger"].startswith(NODE_LOGGERS)]
    assert call_related and all(r.get("call_id") == ch.uuid for r in call_related), \
        [r for r in call_related if r.get("call_id") != ch.uuid]
    trace_id = format(call.context.trace_id, "032x")
    (turn_line,) = [r for r in mine if r["msg"].startswith("turn 2 (speech)")]
    assert turn_line["turn"] == 2 and turn_line["trace_id"] == trace_id and turn_line["tools"] == ["get_datetime"]
    for key in ("endpoint_wait_ms", "stt_wait_ms", "llm_ttft_ms", "llm_first_sentence_ms", "tts_first_ms",
                "voice_to_voice_ms", "playback_start_ms"):
        assert key in turn_line, (key, turn_line)
    (ended,) = [r for r in mine if r["msg"].startswith("call ended")]
    assert ended["outcome"] == "answered" and ended["turns"] == 2 and ended["barge_ins"] == 0
    assert ended["duration_seconds"] > 0 and ended["trace_id"] == trace_id
    assert all("message" not in r for r in records)
    assert not any("15551230001" in line for line in logs.lines())  # the caller's number, masked
