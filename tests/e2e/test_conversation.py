"""A caller talks to the agent through the emulator: real Whisper, Piper, VAD; a scripted LLM over HTTP."""
import json

from voiceagent.testing import llm_server as L

from .conftest import speak, transcribe_heard, wait_for


def test_what_time_is_it_tool_round_trip(make_emulator, make_worker, voice, llm, models):
    llm.push(L.tool_call("get_datetime", {}), L.text("It is half past ten in the morning."))
    emu = make_emulator(speed=2.0)
    w = make_worker([emu], dialog_factory=voice.dialog)
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    assert ch.wait_answered(10)
    assert wait_for(lambda: len(ch.segments) >= 1), "no greeting"
    ch.say(speak(models, "What time is it?"))
    assert llm.wait_requests(2, timeout=20), "the tool result never went back to the LLM"
    first, second = llm.requests[0], llm.requests[1]
    assert "time" in first["messages"][-1]["content"].lower()
    assert any(t["function"]["name"] == "get_datetime" for t in first.get("tools", []))
    tool_msgs = [m for m in second["messages"] if m["role"] == "tool"]
    assert tool_msgs and json.loads(tool_msgs[-1]["content"])
    assert wait_for(lambda: len(ch.segments) >= 2 and voice.turns, 20)
    turn = voice.turns[-1]
    assert "time" in turn.heard.lower()
    assert turn.tools and turn.tools[0]["name"] == "get_datetime" and turn.tools[0]["ok"]
    assert turn.said == ["It is half past ten in the morning."]
    heard = transcribe_heard(models, ch, start=ch.segments[1]["start"])
    assert "half past" in heard and ("ten" in heard or "10" in heard), heard
    assert turn.timings["voice_to_voice_ms"] > 0
    ch.hangup()
