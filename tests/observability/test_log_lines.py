"""Log lines: one JSON object per line with our field names, trace ids, the turn and call lines'
fields, phone numbers masked (LOG_MASK_NUMBERS), and the human-readable text format."""
import json
import logging

from voiceagent.calls.call_state import CallState, Direction
from voiceagent.calls.ports import CallInfo
from voiceagent.calls.turns import Turn
from voiceagent.observability.call_logs import CallLogs
from voiceagent.observability.log_mask import mask_numbers
from voiceagent.observability.logs import bind_call
from voiceagent.observability.tracing import tracer

CALL_ID = "0f3c2b6e-2d4a-4c1e-9a8b-426614174000"
INFO = CallInfo(id=CALL_ID, direction=Direction.INBOUND, caller="+15551230001", callee="+15551230000",
                node="fs1", worker="w1")


def test_a_json_line_has_our_fields_the_call_id_extra_fields_and_the_exception(capture_logs):
    logs = capture_logs("json")
    log = logging.getLogger("voiceagent.calls.test")
    token = bind_call(CALL_ID)
    try:
        log.info("hello %s", "world", extra={"fields": {"turn": 3, "stt_ms": 12.5}, "next_attempt": "abc"})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("it failed")
    finally:
        from voiceagent.observability.logs import call_id_var
        call_id_var.reset(token)
    logging.getLogger("voiceagent.other").warning("no call here")
    first, second, third = logs.records()
    assert list(first)[:5] == ["ts", "level", "logger", "msg", "call_id"], first
    assert first["ts"].endswith("Z") and first["level"] == "info" and first["logger"] == "voiceagent.calls.test"
    assert first["msg"] == "hello world" and first["call_id"] == CALL_ID
    assert first["turn"] == 3 and first["stt_ms"] == 12.5 and first["next_attempt"] == "abc"
    assert "fields" not in first and "trace_id" not in first  # no span: no trace ids
    assert second["level"] == "error" and "ValueError: boom" in second["exc"]
    assert third["level"] == "warning" and "call_id" not in third


def test_a_line_written_inside_a_span_names_its_trace_and_span(capture_logs, spans):
    logs = capture_logs("json")
    with tracer().start_as_current_span("job dial_job") as span:
        logging.getLogger("voiceagent.jobs.test").info("inside")
    line = logs.records()[0]
    ctx = span.get_span_context()
    assert line["trace_id"] == format(ctx.trace_id, "032x") and line["span_id"] == format(ctx.span_id, "016x")


def test_phone_numbers_are_masked_but_call_ids_times_and_durations_are_not():
    assert mask_numbers("call from +15551230001 to 5551230000") == "call from +*******0001 to ******0000"
    assert mask_numbers("sip:+4930123456@carrier") == "sip:+******3456@carrier"
    kept = f"call {CALL_ID} at 1764610000.123 took 1234 ms, ext 1001, port 8021"
    assert mask_numbers(kept) == kept


def test_masking_applies_to_the_message_and_string_fields_and_can_be_turned_off(capture_logs):
    logs = capture_logs("json", mask=True)
    log = logging.getLogger("voiceagent.calls.test")
    log.info("dialing +15551230001", extra={"call_id": CALL_ID, "fields": {"to": "+15551230001", "n": 15551230001}})
    line = logs.records()[0]
    assert line["msg"] == "dialing +*******0001" and line["to"] == "+*******0001" and line["call_id"] == CALL_ID
    assert "15551230001" not in json.dumps(line["msg"]) + line["to"]
    plain = capture_logs("json", mask=False)
    log.info("dialing +15551230001")
    assert plain.records()[0]["msg"] == "dialing +15551230001"


def test_the_turn_line_has_the_whole_breakdown_and_the_call_line_how_it_went(capture_logs):
    logs = capture_logs("json")
    obs = CallLogs()
    obs.call_state(INFO, CallState.CONFIRMED, 100.0)
    obs.call_state(INFO, CallState.ACTIVE, 101.0)
    turn = Turn(index=2, kind="speech", heard="what time is it")
    turn.timings.update(endpoint_wait_ms=210.4, stt_wait_ms=180.0, stt_ms=175.0, llm_ttft_ms=320.0,
                        llm_first_sentence_ms=450.0, tts_first_ms=90.0, voice_to_voice_ms=950.0,
                        playback_start_ms=40.0)
    obs.call_turn(INFO, turn)
    obs.call_barge_in(INFO, 105.0)
    obs.call_ended(INFO, cause="NORMAL_CLEARING", outcome="answered", ended_by="caller", at=111.5)
    turn_line, call_line = logs.records()
    assert turn_line["call_id"] == CALL_ID and turn_line["turn"] == 2 and turn_line["kind"] == "speech"
    for key in ("endpoint_wait_ms", "stt_wait_ms", "llm_ttft_ms", "llm_first_sentence_ms", "tts_first_ms",
                "voice_to_voice_ms", "playback_start_ms"):
        assert key in turn_line, (key, turn_line)
    assert turn_line["msg"].startswith("turn 2 (speech): endpoint 210 ms, stt 180 ms, llm first token 320 ms")
    assert "playback start 40 ms" in turn_line["msg"]
    assert call_line["call_id"] == CALL_ID and call_line["outcome"] == "answered"
    assert call_line["duration_seconds"] == 10.5 and call_line["turns"] == 1 and call_line["barge_ins"] == 1


def test_the_text_format_is_one_readable_line_with_the_short_call_id(capture_logs):
    logs = capture_logs("text")
    logging.getLogger("voiceagent.calls.test").info("caller said: hello from +15551230001",
                                                    extra={"call_id": CALL_ID})
    (line,) = logs.lines()
    assert " INFO  voiceagent.calls.test [0f3c2b6e] caller said: hello from +*******0001" in line
    assert not line.lstrip().startswith("{")
