"""Home Assistant in emulated calls: the caller asks for the porch light and the stand-in receives the service
call (direct), and the caller asks about the garage door and hears Assist's answer (delegated)."""
import json
import os

from voiceagent.dialog.tools import builtin_tools_dir
from voiceagent.testing import llm_server as L

from ..home_assistant.ha_server import TOKEN, HomeAssistantStandIn, assist
from .conftest import heard_like, place_call, speak, transcribe_heard, wait_for


def _voice(make_voice, tmp_path, monkeypatch, ha, tools, **env):
    for name in list(os.environ):
        if name.startswith("HA_"):
            monkeypatch.delenv(name)
    for name, value in {"HA_URL": ha.url, "HA_TOKEN": TOKEN, **env}.items():
        monkeypatch.setenv(name, value)
    profiles = tmp_path / "profiles.json"
    profiles.write_text(json.dumps({"profiles": [{"name": "default", "greeting": "Hello, how can I help?",
                                                  "tools": tools}]}))
    return make_voice(tools_dirs=str(builtin_tools_dir()), profiles_file=str(profiles))


def _finished(ch, voice):
    return wait_for(lambda: voice.turns and len(ch.segments) >= 3 and all(s["status"] == "done" for s in ch.segments),
                    40)


def test_direct_the_caller_turns_on_the_porch_light(make_stack, make_voice, llm, models, tmp_path, monkeypatch):
    ha = HomeAssistantStandIn().start()
    try:
        voice = _voice(make_voice, tmp_path, monkeypatch, ha, ["home_status", "home_control", "hang_up"],
                       HA_MODE="direct", HA_ALLOW_DOMAINS="light")
        llm.push(L.tool_call("home_control", {"name": "porch light", "action": "turn_on"}), L.text("Anything else?"))
        ch, _ = place_call(make_stack, voice)
        ch.say(speak(models, "Please turn on the porch light."))
        assert llm.wait_requests(2, timeout=30), "the tool result never went back to the LLM"
        assert _finished(ch, voice), ch.segments
        tools = [t["function"]["name"] for t in llm.requests[0]["tools"]]
        assert sorted(tools) == ["hang_up", "home_control", "home_status"], tools
        assert [(r["path"], r["body"]) for r in ha.service_calls()] == [("/api/services/light/turn_on",
                                                                         {"entity_id": "light.porch"})]
        run = voice.turns[-1].tools[0]
        assert run["name"] == "home_control" and run["ok"] and run["result"]["data"]["caller"] == "+15551230001"
        assert voice.turns[-1].said[0] == "Done, the Porch Light is on."
        heard = transcribe_heard(models, ch, start=ch.segments[1]["start"])
        assert heard_like(heard, "the porch light is on"), heard
        ch.hangup()
    finally:
        ha.stop()


def test_delegated_assist_answers_and_the_caller_hears_it(make_stack, make_voice, llm, models, tmp_path, monkeypatch):
    ha = HomeAssistantStandIn().start()
    try:
        ha.assist_answers = [assist("query_answer", "The garage door is closed.")]
        voice = _voice(make_voice, tmp_path, monkeypatch, ha, ["home_assistant", "home_control", "hang_up"])
        llm.push(L.tool_call("home_assistant", {"request": "is the garage door closed?"}), L.text("Anything else?"))
        ch, _ = place_call(make_stack, voice)
        ch.say(speak(models, "Is the garage door closed?"))
        assert llm.wait_requests(2, timeout=30), "the tool result never went back to the LLM"
        assert _finished(ch, voice), ch.segments
        tools = [t["function"]["name"] for t in llm.requests[0]["tools"]]
        assert sorted(tools) == ["hang_up", "home_assistant"], tools  # assist mode: no direct control offered
        assert ha.conversations() == [{"text": "is the garage door closed?", "language": "en"}]
        assert voice.turns[-1].said[0] == "The garage door is closed."
        heard = transcribe_heard(models, ch, start=ch.segments[1]["start"])
        assert heard_like(heard, "the garage door is closed"), heard
        ch.hangup()
    finally:
        ha.stop()
