"""The weather built-in in one emulated call: the caller asks, the scripted LLM calls get_weather, the tool
reads a local Tempest stand-in and its report is said word for word (what Whisper hears on the line)."""
import json
import time

from voiceagent.dialog.tools import builtin_tools_dir
from voiceagent.testing import llm_server as L

from ..tools.tempest_server import TempestStandIn
from .conftest import heard_like, place_call, speak, transcribe_heard, wait_for

TEMPEST_VARS = ("TEMPEST_STATION_ID", "TEMPEST_TOKEN", "TEMPEST_BASE_URL", "TEMPEST_UNITS", "TEMPEST_LOCATION_NAME",
                "TEMPEST_TIMEOUT")


def test_the_caller_hears_the_station_report_verbatim(make_stack, make_voice, llm, models, tmp_path, monkeypatch):
    tempest = TempestStandIn().start()
    try:
        tempest.obs(timestamp=int(time.time()) - 60)  # a fresh reading: no weekday in the report
        for name in TEMPEST_VARS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("TEMPEST_STATION_ID", "118512")
        monkeypatch.setenv("TEMPEST_TOKEN", "tok-e2e")
        monkeypatch.setenv("TEMPEST_BASE_URL", tempest.base_url)
        profiles = tmp_path / "profiles.json"
        profiles.write_text(json.dumps({"profiles": [{
            "name": "default", "timezone": "America/Chicago", "greeting": "Hello, how can I help?",
            "tools": ["get_weather", "get_datetime", "calculate", "hang_up"]}]}))
        voice = make_voice(tools_dirs=str(builtin_tools_dir()), profiles_file=str(profiles))
        llm.push(L.tool_call("get_weather", {}), L.text("Anything else?"))
        ch, _ = place_call(make_stack, voice)
        ch.say(speak(models, "What is the weather like outside?"))
        assert llm.wait_requests(2, timeout=30), "the tool result never went back to the LLM"
        assert wait_for(lambda: voice.turns and len(ch.segments) >= 3
                        and all(s["status"] == "done" for s in ch.segments), 40), ch.segments
        turn = voice.turns[-1]
        run = turn.tools[0]
        assert run["name"] == "get_weather" and run["ok"], turn.tools
        speech = run["result"]["speak"]
        assert speech.startswith("At Storm Lake, as of ") and "it's 44 degrees with foggy conditions" in speech
        assert turn.said[0] == speech and turn.said[-1] == "Anything else?", turn.said
        assert run["result"]["data"]["temperature"] == 44
        assert tempest.requests and tempest.requests[0]["query"] == {"token": ["tok-e2e"]}
        tool_msg = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"][-1]
        assert "word for word" in tool_msg["content"]
        heard = transcribe_heard(models, ch, start=ch.segments[1]["start"])
        for phrase in ("storm lake", "44 degrees", "the wind is calm", "half an inch of rain", "anything else"):
            assert heard_like(heard, phrase), (phrase, heard)
        ch.hangup()
    finally:
        tempest.stop()
