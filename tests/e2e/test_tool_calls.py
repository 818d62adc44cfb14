"""A tool run when an outbound call is answered (CallRequest.tool): the callee hears the opening,
``before``, the tool's result, ``after``; a failing or slow tool is an apology and the call goes on."""
import logging
import os
import re

import pytest
import redis

from tests.api.conftest import TOKEN, api_settings
from voiceagent.api.server import make_server
from voiceagent.dialog.tool_speech import APOLOGY
from voiceagent.dialog.tools import builtin_tools_dir
from voiceagent.observability.logs import call_id_var
from voiceagent.records.client import CallClient
from voiceagent.records.models import Outcome
from voiceagent.testing import llm_server as L

from tests.jobs_procs import jobs_worker  # noqa: F401 - fixture

from .conftest import heard_like, speak, transcribe_heard, wait_for

PLUGINS = f"{builtin_tools_dir()},{os.path.join(os.path.dirname(__file__), 'tool_plugins')}"


@pytest.fixture
def tool_voice(make_voice):
    return make_voice(tools_dirs=PLUGINS, tool_timeout=0.5)


class _ToolLog(logging.Handler):
    """Every 'tool ... failed' line with the call id bound where it was written."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        if "tool" in record.getMessage() and "failed" in record.getMessage():
            self.lines.append((record.getMessage(), call_id_var.get()))


@pytest.fixture
def tool_log():
    h = _ToolLog()
    logging.getLogger().addHandler(h)
    yield h
    logging.getLogger().removeHandler(h)


def _answered(emu, call_id, segments=1):
    assert wait_for(lambda: call_id in emu.channels and emu.channels[call_id].answered, 30), "never answered"
    ch = emu.channels[call_id]
    assert wait_for(lambda: len(ch.segments) >= segments and all(s["status"] == "done" for s in ch.segments), 40), \
        "the opening never played"
    return ch


def _in_order(heard, *phrases):
    """Each phrase is heard, in this order (by where its longest word is in Whisper's text)."""
    at = []
    for p in phrases:
        assert heard_like(heard, p), (p, heard)
        longest = max(re.findall(r"[a-z0-9']+", p.lower()), key=len)
        at.append(heard.find(longest, at[-1] if at else 0))
    assert all(a >= 0 for a in at) and at == sorted(at), (phrases, at, heard)


def _events(client, call_id):
    """Every event of the call on the stream, read to the end."""
    out, last = [], "0-0"
    while True:
        last, batch = client.stream.tail(last, block_ms=100, count=500)
        if not batch:
            return out
        out += [ev for ev in batch if getattr(ev, "call_id", "") == call_id]


def test_a_briefing_placed_through_the_api_says_the_result_then_hangs_up(
        make_emulator, make_worker, tool_voice, models, llm, redis_prefix, jobs_worker):
    emu = make_emulator(speed=3.0)
    emu.script_destination("+15550211", outcome="answer")
    jobs_worker()  # POST /tools/{name}/call queues the call; an RQ worker hands it to the voice worker
    make_worker([emu], dialog_factory=tool_voice.dialog, originate_gateway="carrier1")
    server = make_server(api_settings(redis_prefix, tools_dirs=PLUGINS))
    server.start()
    try:
        import requests
        r = requests.post(f"http://127.0.0.1:{server.server_port}/tools/weather_report/call",
                          headers={"Authorization": f"Bearer {TOKEN}"},
                          json={"to": "+15550211", "message": "Good morning Ann.", "arguments": {"city": "Paris"},
                                "before": "Here is your weather.", "after": "Have a nice day."})
    finally:
        server.stop(timeout=2)
    assert r.status_code == 202, r.text
    call_id = r.json()["id"]
    client = CallClient(redis.Redis(), redis_prefix)
    ch = _answered(emu, call_id, segments=2)
    rec = client.wait(call_id, timeout=60)
    assert rec.outcome == Outcome.ANSWERED and rec.ended_by == "agent", rec  # a briefing hangs up once heard
    _in_order(transcribe_heard(models, ch), "good morning ann", "here is your weather",
              "it is sunny and warm", "have a nice day")
    tool_turns = [t for t in rec.turns if t.tools]
    assert len(tool_turns) == 1 and tool_turns[0].kind == "tool", rec.turns
    run = tool_turns[0].tools[0]
    assert run.name == "weather_report" and run.ok and run.arguments == {"city": "Paris"}
    assert run.result["summary"] == "In Paris it is sunny and warm."
    assert any("sunny and warm" in s for s in tool_turns[0].agent_text)
    events = _events(client, call_id)
    assert [e.tool.name for e in events if e.type == "call.tool"] == ["weather_report"]
    assert llm.requests == []  # said from the tool's result; the LLM was never asked


def test_a_failing_tool_is_an_apology_and_the_choice_is_still_asked(
        make_emulator, make_worker, tool_voice, models, redis_prefix, tool_log):
    emu = make_emulator(speed=3.0)
    emu.script_destination("+15550212", outcome="answer")
    make_worker([emu], dialog_factory=tool_voice.dialog, originate_gateway="carrier1")
    client = CallClient(redis.Redis(), redis_prefix)
    call_id = client.place({"to": "+15550212", "message": "Hello, this is the clinic.",
                            "tool": {"name": "crash_report", "after": "We will send it by post."},
                            "choice": {"question": "Is your address the same? Press 1 for yes or 2 for no.",
                                       "options": [{"value": "yes", "digit": "1"}, {"value": "no", "digit": "2"}]}})
    ch = _answered(emu, call_id, segments=2)
    _in_order(transcribe_heard(models, ch), "this is the clinic", APOLOGY, "send it by post", "is your address")
    ch.dtmf("1")
    rec = client.wait(call_id, timeout=40)
    assert rec.choice is not None and rec.choice.value == "yes" and rec.choice.via == "dtmf"
    run = next(t for turn in rec.turns for t in turn.tools)
    assert run.name == "crash_report" and not run.ok and "backend exploded" in run.result["error"]
    mine = [line for line in tool_log.lines if "crash_report" in line[0]]
    assert len(mine) == 1 and mine[0][1] == call_id, tool_log.lines  # logged once, with the call id


def test_a_slow_tool_times_out_into_an_apology_and_the_conversation_goes_on(
        make_emulator, make_worker, tool_voice, models, llm, redis_prefix):
    llm.push(L.text("Your order ships on Monday."))
    emu = make_emulator(speed=3.0)
    emu.script_destination("+15550213", outcome="answer")
    make_worker([emu], dialog_factory=tool_voice.dialog, originate_gateway="carrier1")
    client = CallClient(redis.Redis(), redis_prefix)
    call_id = client.place({"to": "+15550213", "tool": {"name": "slow_report", "before": "Hello from the shop."},
                            "instructions": "Answer questions about the order."})
    ch = _answered(emu, call_id, segments=2)
    _in_order(transcribe_heard(models, ch), "hello from the shop", APOLOGY)
    ch.say(speak(models, "When does my order ship?"))
    assert wait_for(lambda: llm.requests, 30), "the conversation did not go on"
    said = [m["content"] for m in llm.requests[0]["messages"] if m["role"] == "assistant"]
    assert said and said[0] == f"Hello from the shop. {APOLOGY}"  # the LLM knows what the callee heard
    assert wait_for(lambda: len(ch.segments) >= 3 and ch.segments[-1]["status"] == "done", 30), ch.segments
    ch.hangup()
    rec = client.wait(call_id, timeout=30)
    assert rec.ended_by == "caller"
    run = next(t for turn in rec.turns for t in turn.tools)
    assert run.name == "slow_report" and not run.ok and "timed out" in run.result["error"]
