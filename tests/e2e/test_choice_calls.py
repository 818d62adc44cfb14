"""Outbound calls that know why they were placed: the opening and a choice question, answered by
voice or by DTMF, re-asked when unclear — the answer lands in the call record."""
import redis

from voiceagent.records.client import CallClient
from voiceagent.records.models import Outcome
from voiceagent.testing import llm_server as L

from .conftest import heard_like, speak, transcribe_heard, wait_for

QUESTION = "Will you come to your appointment on {day}? Say yes or no, or press 1 or 2."


def _request(number, **kw):
    return {"to": number, "message": "Hello {name}, this is the clinic.", "variables": {"name": "Ann", "day": "Monday"},
            "choice": {"question": QUESTION, "options": [{"value": "yes", "digit": "1"}, {"value": "no", "digit": "2"}],
                       **kw}}


def _answered_channel(emu, call_id):
    assert wait_for(lambda: call_id in emu.channels and emu.channels[call_id].answered, 30), "never answered"
    ch = emu.channels[call_id]
    assert wait_for(lambda: ch.segments and ch.segments[0]["status"] == "done", 30), "the question never played"
    return ch


def test_choice_answered_yes_by_voice(make_emulator, make_worker, voice, models, llm, redis_prefix):
    emu = make_emulator(speed=3.0)
    emu.script_destination("+15550201", outcome="answer")
    make_worker([emu], dialog_factory=voice.dialog, originate_gateway="carrier1")
    client = CallClient(redis.Redis(), redis_prefix)
    call_id = client.place(_request("+15550201"))
    ch = _answered_channel(emu, call_id)
    opening = transcribe_heard(models, ch)
    assert heard_like(opening, "Hello Ann") and heard_like(opening, "appointment on Monday"), opening
    ch.say(speak(models, "Yes, I will be there."))
    rec = client.wait(call_id, timeout=60)
    assert rec.outcome == Outcome.ANSWERED and rec.ended_by == "agent"
    assert rec.choice.value == "yes" and rec.choice.via == "voice" and heard_like(rec.choice.raw, "yes")
    kinds = [t.kind for t in rec.turns]
    assert kinds[0] == "greeting" and "choice" in kinds
    said = next(t for t in rec.turns if t.kind == "choice")
    assert heard_like(said.caller_text, "yes I will be there") and said.caller_raw
    assert any("noted: yes" in s for s in said.agent_text)
    assert said.timings.get("stt_ms", 0) > 0
    assert llm.requests == []  # the answer is matched by words, never guessed by the model


def test_choice_answered_by_dtmf_after_an_unclear_answer(make_emulator, make_worker, voice, models, redis_prefix):
    emu = make_emulator(speed=3.0)
    emu.script_destination("+15550202", outcome="answer")
    make_worker([emu], dialog_factory=voice.dialog, originate_gateway="carrier1")
    client = CallClient(redis.Redis(), redis_prefix)
    call_id = client.place(_request("+15550202"))
    ch = _answered_channel(emu, call_id)
    ch.say(speak(models, "The weather is lovely today."))
    assert wait_for(lambda: len(ch.segments) >= 2 and ch.segments[1]["status"] == "done", 40), "never re-asked"
    assert heard_like(transcribe_heard(models, ch, start=ch.segments[1]["start"]), "didn't get that"), ch.segments
    ch.dtmf("1")
    rec = client.wait(call_id, timeout=40)
    assert rec.choice.value == "yes" and rec.choice.via == "dtmf" and rec.choice.raw == "1"
    assert rec.choice.attempts == 2
    assert [d.digit for d in rec.dtmf] == ["1"]


def test_choice_never_answered_gives_up_after_its_attempts(make_emulator, make_worker, voice, models, redis_prefix):
    emu = make_emulator(speed=3.0)
    emu.script_destination("+15550203", outcome="answer")
    make_worker([emu], dialog_factory=voice.dialog, originate_gateway="carrier1")
    client = CallClient(redis.Redis(), redis_prefix)
    call_id = client.place(_request("+15550203", attempts=1))
    ch = _answered_channel(emu, call_id)
    ch.dtmf("9")
    rec = client.wait(call_id, timeout=40)
    assert rec.choice.value is None and rec.choice.raw == "9" and rec.outcome == Outcome.ANSWERED


def test_the_conversation_knows_why_the_call_was_placed(make_emulator, make_worker, voice, models, llm, redis_prefix):
    llm.push(L.text("Yes, the parcel arrives on Monday."))
    emu = make_emulator(speed=3.0)
    emu.script_destination("+15550204", outcome="answer")
    make_worker([emu], dialog_factory=voice.dialog, originate_gateway="carrier1")
    client = CallClient(redis.Redis(), redis_prefix)
    call_id = client.place({"to": "+15550204", "message": "Hello {name}, this is the parcel service.",
                            "instructions": "Tell {name} that parcel {parcel} arrives on {day}.",
                            "variables": {"name": "Ann", "parcel": "A-17", "day": "Monday"}})
    ch = _answered_channel(emu, call_id)
    assert heard_like(transcribe_heard(models, ch), "parcel service")
    ch.say(speak(models, "When does my parcel arrive?"))
    assert wait_for(lambda: llm.requests, 30), "the LLM was never asked"
    system = llm.requests[0]["messages"][0]["content"]
    assert "Tell Ann that parcel A-17 arrives on Monday." in system and "parcel = A-17" in system
    said = [m for m in llm.requests[0]["messages"] if m["role"] == "assistant"]
    assert said and said[0]["content"] == "Hello Ann, this is the parcel service."  # the opening is in the history
    assert wait_for(lambda: len(ch.segments) >= 2 and ch.segments[-1]["status"] == "done", 30), ch.segments
    ch.hangup()
    rec = client.wait(call_id, timeout=30)
    assert rec.outcome == Outcome.ANSWERED and rec.ended_by == "caller"
    assert any("Monday" in " ".join(t.agent_text) for t in rec.turns if t.kind == "speech")
