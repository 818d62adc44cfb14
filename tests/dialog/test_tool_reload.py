"""Reloading plugins (dialog/tool_reload.py), TOOLS_DISABLED and per-profile tools, ToolReply.speak and
ctx.say in the conversation, against the real scripted LLM server and real Redis."""
import os
import sys

import redis

from tests.calls.conftest import redis_prefix  # noqa: F401 - fixture
from voiceagent.config import ToolsSettings
from voiceagent.dialog.conversation import Conversation, Say, ToolFinished
from voiceagent.dialog.tool_reload import ToolSet, ToolWatcher, bump_generation, load_registry
from voiceagent.dialog.tools import ToolContext, ToolRegistry
from voiceagent.records.keys import Keys
from voiceagent.testing import llm_server as S

TOOL = '''
from voiceagent.dialog.tool_support import ToolReply
from voiceagent.dialog.tools import tool

@tool("{name}", capability="{cap}")
def {name}(args, ctx):
    """A tool written by the test."""
    return {body}
'''


def _write(d, file, name, body="'v1'", cap="do things"):
    (d / file).write_text(TOOL.format(name=name, body=body, cap=cap))


def _settings(d, **kw):
    return ToolsSettings(tools_dirs=str(d), **kw)


def test_a_reload_picks_up_new_changed_and_removed_files_and_keeps_a_broken_one_s_last_version(
        tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # a .pyc is cached, as in production
    _write(tmp_path, "a.py", "alpha")
    _write(tmp_path, "b.py", "beta")
    _write(tmp_path, "c.py", "gamma")
    live = ToolSet(load_registry(_settings(tmp_path)), _settings(tmp_path))
    old = live.current
    ctx = ToolContext()
    first = (tmp_path / "a.py").stat()
    _write(tmp_path, "a.py", "alpha", "'v2'")  # same size, same second: must not run the cached bytecode
    os.utime(tmp_path / "a.py", ns=(first.st_atime_ns, first.st_mtime_ns))
    (tmp_path / "b.py").unlink()
    (tmp_path / "c.py").write_text("def broken(:\n")
    _write(tmp_path, "d.py", "delta")
    report = live.reload(7)
    assert report.added == ["delta"] and report.changed == ["alpha"] and report.removed == ["beta"]
    assert report.kept == ["gamma"] and report.generation == 7
    assert any("c.py failed to load" in p for p in report.problems)
    assert any("kept the previously loaded version of gamma" in p for p in report.problems)
    reg = live.current
    assert reg is not old and reg.names() == ["alpha", "delta", "gamma"]
    assert reg.run("alpha", {}, ctx).value == "v2"
    assert old.run("alpha", {}, ctx).value == "v1"  # a tool running in a live call finishes with its own code
    assert reg.run("gamma", {}, ctx).value == "v1"


def test_the_watcher_follows_the_generation_and_survives_redis_being_down(tmp_path, redis_prefix):  # noqa: F811
    _write(tmp_path, "a.py", "alpha")
    live = ToolSet(load_registry(_settings(tmp_path)), _settings(tmp_path))
    keys = Keys(redis_prefix)
    r = redis.Redis()
    watcher = ToolWatcher(live, r, keys, interval=0.1)
    watcher.start()
    watcher.stop()  # driven by hand below
    assert watcher.check() is None  # nothing bumped: nothing reloaded
    _write(tmp_path, "b.py", "beta")
    gen = bump_generation(r, keys)
    report = watcher.check()
    assert report is not None and report.added == ["beta"] and live.generation == gen
    assert watcher.check() is None
    down = ToolWatcher(live, redis.Redis(port=1, socket_connect_timeout=0.2), keys, interval=0.1)
    current = live.current
    assert down.check() is None and live.current is current  # logged, the tools stay


def test_disabled_and_profile_tools_are_neither_offered_nor_run(server, llm, registry, profile, clock):
    registry.disabled = frozenset({"add_numbers"})
    ctx = ToolContext(call_id="c1", clock=clock)
    prof = profile.model_copy(update={"tools": ["get_datetime", "add_numbers", "hang_up"]})
    conv = Conversation(prof, llm, registry, ctx)
    assert conv.tool_names == ["get_datetime", "hang_up"]  # explode (loaded) is not in the profile
    server.push(S.tool_call("add_numbers", {"a": 1, "b": 2}), S.text("I cannot."))
    events = list(conv.respond("add one and two"))
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert finished and not finished[0].ok and "unknown tool" in finished[0].result["error"]
    offered = {t["function"]["name"] for t in server.requests[0]["tools"]}
    assert offered == {"get_datetime", "hang_up"}
    server.push(S.tool_call("explode", {}), S.text("No."))
    finished = [e for e in conv.respond("explode") if isinstance(e, ToolFinished)]
    assert not finished[0].ok and "unknown tool" in finished[0].result["error"]


REPLY = '''
from voiceagent.dialog.tool_support import ToolReply
from voiceagent.dialog.tools import tool

@tool("parcel", capability="track parcels")
def parcel(args, ctx):
    """Where the parcel is."""
    ctx.say("One moment, I am looking that up.")
    return ToolReply(text="arrives friday", speak="Your parcel arrives on Friday.", data={"eta": "fri"})
'''


def _parcel_conv(tmp_path, llm, profile, clock, on_say=None):
    (tmp_path / "parcel.py").write_text(REPLY)
    reg = ToolRegistry()
    reg.load_dirs([tmp_path])
    ctx = ToolContext(call_id="c1", clock=clock, on_say=on_say)
    return Conversation(profile.model_copy(update={"tools": ["parcel"]}), llm, reg, ctx)


def test_tool_reply_speak_is_said_verbatim_and_the_llm_gets_text(server, llm, profile, clock, tmp_path):
    spoken = []
    conv = _parcel_conv(tmp_path, llm, profile, clock, on_say=spoken.append)
    server.push(S.tool_call("parcel", {}), S.text("Anything else?"))
    events = list(conv.respond("where is my parcel"))
    says = [e for e in events if isinstance(e, Say)]
    assert spoken == ["One moment, I am looking that up."]  # said during the tool, by the call
    assert [(s.text, s.kind) for s in says] == [("Your parcel arrives on Friday.", "tool"), ("Anything else?", "reply")]
    finished = next(e for e in events if isinstance(e, ToolFinished))
    assert finished.result["data"] == {"eta": "fri"}
    second = server.requests[1]["messages"]
    tool_msg = next(m for m in second if m["role"] == "tool")["content"]
    assert tool_msg.startswith("arrives friday") and "Your parcel arrives on Friday." in tool_msg  # + "heard it"
    assert second[-1] == {"role": "assistant",
                          "content": "One moment, I am looking that up. Your parcel arrives on Friday."}
    conv.record_heard(["One moment, I am looking that up.", "Your parcel arrives on Friday.", "Anything else?"])
    assistant = [m["content"] for m in conv.history if m["role"] == "assistant" and m.get("content")]
    assert assistant == ["One moment, I am looking that up. Your parcel arrives on Friday.", "Anything else?"]


def test_ctx_say_without_a_call_to_speak_into_is_yielded_after_the_tool(server, llm, profile, clock, tmp_path):
    conv = _parcel_conv(tmp_path, llm, profile, clock)
    server.push(S.tool_call("parcel", {}), S.text("Anything else?"))
    says = [e.text for e in conv.respond("where is my parcel") if isinstance(e, Say)]
    assert says == ["One moment, I am looking that up.", "Your parcel arrives on Friday.", "Anything else?"]


def test_a_conversation_takes_the_reloaded_tools_and_capabilities_at_its_next_turn(
        server, llm, profile, clock, tmp_path):
    _write(tmp_path, "a.py", "alpha", cap="spell words")
    live = ToolSet(load_registry(_settings(tmp_path)), _settings(tmp_path))
    ctx = ToolContext(call_id="c1", clock=clock)
    conv = Conversation(profile.model_copy(update={"tools": ["alpha", "beta"], "prompt": "Can: {capabilities}."}),
                        llm, live.current, ctx, tool_source=live)
    server.push(S.text("Hi."), S.text("Hi again."))
    list(conv.respond("hello"))
    _write(tmp_path, "b.py", "beta", cap="count sheep")
    live.reload()
    list(conv.respond("hello again"))
    first, second = server.requests
    assert [t["function"]["name"] for t in first["tools"]] == ["alpha"]
    assert [t["function"]["name"] for t in second["tools"]] == ["alpha", "beta"]
    assert "count sheep" not in first["messages"][0]["content"]
    assert "spell words; count sheep" in second["messages"][0]["content"]
