"""Tool plugins in live emulated calls (real Whisper, Piper, VAD; the scripted LLM over HTTP):
the README's first tool, reloading plugins while a call goes on, words a tool says itself."""
import os
import shutil
import textwrap

import redis

from tests.api.conftest import start_api  # noqa: F401 - fixture
from voiceagent.records.client import CallClient
from voiceagent.testing import llm_server as L

from .conftest import heard_like, place_call, speak, transcribe_heard, wait_for

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "examples", "first_tool.py")


def _profiles(tmp_path, tools):
    path = tmp_path / "profiles.yaml"
    path.write_text(textwrap.dedent(f"""\
        default: shop
        profiles:
          - name: shop
            timezone: Europe/Paris
            greeting: "Hello, this is the shop."
            tools: [{", ".join(tools)}]
        """))
    return str(path)


def _ask(ch, voice, models, text, n):
    """The caller says ``text``; once the agent's answer (the ``n``-th turn) has played, what the caller heard."""
    start = len(ch.segments)
    ch.say(speak(models, text))
    assert wait_for(lambda: len(voice.turns) >= n and len(ch.segments) > start
                    and all(s["status"] == "done" for s in ch.segments), 40), (voice.turns, ch.segments)
    return voice.turns[n - 1], transcribe_heard(models, ch, start=ch.segments[start]["start"])


def _offered(request):
    return sorted(t["function"]["name"] for t in request.get("tools") or [])


def test_the_readme_first_tool_answers_in_a_call_with_its_own_words_and_settings(
        make_stack, make_voice, llm, models, tmp_path, monkeypatch, redis_prefix):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(EXAMPLE, plugins / "first_tool.py")  # exactly the README's file, nothing else
    monkeypatch.setenv("OPENING_HOURS_SATURDAY", "ten until noon")
    voice = make_voice(tools_dirs=str(plugins), profiles_file=_profiles(tmp_path, ["opening_hours"]))
    assert voice.kit.tools.names() == ["opening_hours"] and not voice.kit.tools.errors
    llm.push(L.tool_call("opening_hours", {"day": "saturday"}), L.text("Anything else?"))
    ch, _ = place_call(make_stack, voice)
    turn, heard = _ask(ch, voice, models, "When are you open on Saturday?", 1)
    assert heard_like(heard, "on saturday the shop is open from ten until noon"), heard
    assert turn.said == ["On Saturday the shop is open from ten until noon.", "Anything else?"]
    first, second = llm.requests[0], llm.requests[1]
    assert _offered(first) == ["opening_hours"] and "tell the shop's opening hours" in first["messages"][0]["content"]
    tool_msg = next(m for m in second["messages"] if m["role"] == "tool")
    assert tool_msg["content"].startswith("The caller was just told: On Saturday")  # the LLM got ``text``
    assert second["messages"][-1] == {"role": "assistant",
                                      "content": "On Saturday the shop is open from ten until noon."}
    ch.hangup()
    rec = CallClient(redis.Redis(), redis_prefix).wait(ch.uuid, timeout=20)
    run = next(t for tr in rec.turns for t in tr.tools)
    assert run.name == "opening_hours" and run.ok and run.result["data"] == {"day": "saturday",
                                                                             "hours": "ten until noon"}
    assert "On Saturday the shop is open from ten until noon." in next(tr for tr in rec.turns if tr.tools).agent_text


SHOP_V1 = '''
from voiceagent.dialog.tool_support import ToolReply
from voiceagent.dialog.tools import tool

@tool("shop_status", capability="say whether the shop is open")
def shop_status(args, ctx):
    """Whether the shop is open now."""
    return ToolReply(text="said", speak="The shop is open.")
'''
SHOP_V2 = SHOP_V1.replace("The shop is open.", "The shop is closed for lunch.")
STOCK = '''
from voiceagent.dialog.tools import tool

@tool("stock_check", capability="check what is in stock")
def stock_check(args, ctx):
    """How many bicycles are in stock."""
    ctx.say("One moment, I am counting the bicycles.")
    return {"bicycles": 3}
'''


def test_reloading_plugins_during_a_live_call_changes_the_next_turn_s_tools(
        make_stack, make_voice, llm, models, tmp_path, start_api, redis_prefix):  # noqa: F811
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "shop.py").write_text(SHOP_V1)
    settings = dict(tools_dirs=str(plugins), tools_reload_check_seconds=0.2,
                    profiles_file=_profiles(tmp_path, ["shop_status", "stock_check", "hang_up"]))
    voice = make_voice(redis_prefix=redis_prefix, **settings)
    watcher = voice.watch_tools(redis.Redis())
    api = start_api(tools_dirs=str(plugins))
    try:
        llm.push(L.tool_call("shop_status", {}), L.text("Anything else?"))
        ch, sess = place_call(make_stack, voice)
        _, heard = _ask(ch, voice, models, "Is the shop open?", 1)
        assert heard_like(heard, "the shop is open"), heard
        assert _offered(llm.requests[0]) == ["shop_status"]  # stock_check is enabled but not loaded yet

        # mid-call: shop.py changes, stock.py appears, a broken file is saved too
        (plugins / "shop.py").write_text(SHOP_V2)
        (plugins / "stock.py").write_text(STOCK)
        (plugins / "typo.py").write_text("def oops(:\n")
        r = api.http.post(api.url + "/tools/reload")
        assert r.status_code == 202, r.text
        report = r.json()
        assert report["added"] == ["stock_check"] and report["changed"] == ["shop_status"], report
        assert any("typo.py" in p and "SyntaxError" in p for p in report["problems"]), report
        assert wait_for(lambda: voice.kit.live.generation == report["generation"], 10), "the worker never reloaded"
        assert not sess.ended.is_set()  # the call goes on

        llm.push(L.tool_calls([("stock_check", {}), ("shop_status", {})]), L.text("Anything else?"))
        turn, heard = _ask(ch, voice, models, "How many bicycles do you have?", 2)
        request = llm.requests[2]
        assert _offered(request) == ["shop_status", "stock_check"], request.get("tools")
        assert "check what is in stock" in request["messages"][0]["content"]  # the prompt's capabilities follow
        assert heard_like(heard, "counting the bicycles") and heard_like(heard, "closed for lunch"), heard
        assert turn.said[:2] == ["One moment, I am counting the bicycles.", "The shop is closed for lunch."]
        assert [t.name for t in turn.tools] == ["stock_check", "shop_status"] and all(t.ok for t in turn.tools)

        # stock.py removed: its tool is gone from the next turn (the CLI's reload this time)
        (plugins / "stock.py").unlink()
        from click.testing import CliRunner

        from voiceagent.cli import main
        out = CliRunner().invoke(main, ["tools", "reload"], env={"REDIS_PREFIX": redis_prefix,
                                                                 "TOOLS_DIRS": str(plugins)})
        assert out.exit_code == 1 and "typo.py" in out.output, out.output  # the broken file is still reported
        gen = int(redis.Redis().get(f"{redis_prefix}:tools:generation"))
        assert gen == report["generation"] + 1
        assert wait_for(lambda: voice.kit.live.generation == gen, 10), "the worker never reloaded"
        llm.push(L.tool_call("stock_check", {}), L.text("I cannot check that."))
        turn, _ = _ask(ch, voice, models, "And how many scooters?", 3)
        assert _offered(llm.requests[4]) == ["shop_status"]
        assert turn.tools[0].name == "stock_check" and turn.tools[0].ok is False
        assert "unknown tool" in turn.tools[0].result["error"]
        ch.hangup()
    finally:
        watcher.stop()
