"""An inbound call leaves a record any process can read: who, states with times, every turn (what
the caller said, Whisper's raw text, what the agent said and the caller heard, tools, timings), the
outcome — and the same facts on the event stream."""
import redis

from voiceagent.records.client import CallClient
from voiceagent.records.models import Outcome
from voiceagent.testing import llm_server as L

from .conftest import place_call, speak, wait_for


def test_an_inbound_call_leaves_its_record_and_events(make_stack, voice, llm, models, redis_prefix):
    llm.push(L.tool_call("get_datetime", {}), L.text("It is half past ten in the morning."), L.text("Noted."))
    stack = make_stack(voice, speed=3.0)
    ch, sess = place_call(make_stack, voice, stack=stack, caller="+15551230009")
    ch.say(speak(models, "What time is it?"))
    assert wait_for(lambda: len(ch.segments) >= 2 and ch.segments[-1]["status"] == "done", 30), ch.segments
    ch.press("7")
    assert wait_for(lambda: any(t.kind == "dtmf" for t in voice.turns), 20)
    ch.hangup()
    assert sess.closed.wait(10)
    client = CallClient(redis.Redis(), redis_prefix)
    rec = client.wait(ch.uuid, timeout=20)
    assert rec.direction == "inbound" and rec.from_ == "+15551230009" and rec.to and rec.node == "fs1"
    assert rec.worker == stack.worker.worker_id and rec.request is None
    assert [h.state for h in rec.history] == ["offered", "confirmed", "answering", "active", "ending", "ended"]
    assert all(a.at <= b.at for a, b in zip(rec.history, rec.history[1:]))
    assert rec.outcome == Outcome.ANSWERED and rec.ended_by == "caller" and rec.hangup_cause == "NORMAL_CLEARING"
    assert rec.duration > 0
    greeting, question = rec.turns[0], rec.turns[1]
    assert greeting.kind == "greeting" and greeting.agent_text and greeting.heard == greeting.agent_text
    assert question.kind == "speech" and "time" in question.caller_text.lower() and question.caller_raw
    assert question.agent_text == ["It is half past ten in the morning."] and question.heard == question.agent_text
    assert [t.name for t in question.tools] == ["get_datetime"] and question.tools[0].ok
    assert question.timings["stt_ms"] > 0 and question.timings["voice_to_voice_ms"] > 0
    assert [d.digit for d in rec.dtmf] == ["7"]
    got = [ev for _, ev in client.stream.read("t", "c", block_ms=1) if ev.call_id == ch.uuid]
    types = [ev.type for ev in got]
    assert types[0] == "call.answered" and types[-1] == "call.ended", types
    assert types.count("call.turn") == len(rec.turns) and "call.tool" in types and "call.dtmf" in types
    assert got[-1].outcome == Outcome.ANSWERED and got[-1].duration == rec.duration
    assert ch.uuid not in client.records.open_ids()
