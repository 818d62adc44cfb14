"""Tool registry: plugin discovery, schemas, validation, failures."""
from datetime import datetime, timezone

from pathlib import Path

import gevent
import pytest
from pydantic import BaseModel, Field

from voiceagent.dialog.profiles import Profile
from voiceagent.dialog.tools import (FixedClock, PluginError, Tool, ToolContext, ToolRegistry, builtin_tools_dir,
                                     tool)

PLUGINS = Path(__file__).parent / "plugins"


def test_builtins_are_plugins():
    reg = ToolRegistry()
    reg.load_dirs([builtin_tools_dir()])
    assert {"calculate", "get_datetime", "get_weather", "hang_up", "repeat_after_me", "tell_joke",
            "transfer_call"} <= set(reg.names()) and not reg.errors
    # the scheduling tools (tools/timer.py ...: docs/schedules.md)
    assert {"set_timer", "schedule_callback", "schedule_briefing", "list_scheduled", "cancel_scheduled"} \
        <= set(reg.names())


def test_schema_is_generated_from_the_pydantic_model(registry):
    spec = registry.get("add_numbers").spec()["function"]
    assert spec["name"] == "add_numbers" and spec["description"] == "Add two integers."
    params = spec["parameters"]
    assert params["type"] == "object" and params["required"] == ["a", "b"]
    assert params["properties"]["a"] == {"description": "first number", "title": "A", "type": "integer"}
    assert registry.get("hang_up").spec()["function"]["parameters"]["properties"] == {}
    dt = registry.get("get_datetime").spec()["function"]["parameters"]
    assert list(dt["properties"]) == ["timezone"] and "required" not in dt  # optional


def test_broken_plugins_are_skipped_and_reported():
    reg = ToolRegistry()
    reg.load_dirs([PLUGINS / "broken"])
    assert reg.names() == ["still_works"]
    text = "\n".join(reg.errors)
    for name, why in [("a_syntax_error.py", "SyntaxError"), ("b_raises.py", "frobnicate"), ("c_exits.py", "SystemExit")]:
        assert name in text and why in text


def test_duplicate_names_are_refused_naming_both_files():
    reg = ToolRegistry()
    reg.load_dirs([builtin_tools_dir(), PLUGINS / "duplicate"])
    assert len(reg.errors) == 1
    err = reg.errors[0]
    assert "duplicate tool name 'get_datetime'" in err and "dup_datetime.py" in err and "datetime_tool.py" in err
    assert reg.get("get_datetime").source.endswith("datetime_tool.py")


def test_missing_directory_is_reported():
    reg = ToolRegistry()
    reg.load_dirs(["/nonexistent/tools"])
    assert reg.errors and "does not exist" in reg.errors[0]


def test_get_datetime_uses_the_profile_time_zone():
    reg = ToolRegistry()
    reg.load_dirs([builtin_tools_dir()])
    ctx = ToolContext(timezone="America/New_York", clock=FixedClock(datetime(2024, 7, 1, 3, 30, tzinfo=timezone.utc)))
    res = reg.run("get_datetime", {}, ctx)
    assert res.ok and res.value["time"] == "11:30 PM" and res.value["date"] == "June 30, 2024"
    assert res.value["weekday"] == "Sunday" and res.value["iso"].endswith("-04:00")


def test_hang_up_and_transfer_only_set_requests(registry):
    seen = []
    ctx = ToolContext(profile=Profile(name="p", transfer_targets={"desk": "2000"}), on_transfer=seen.append)
    assert registry.run("hang_up", {}, ctx).ok and ctx.hangup_reason == "assistant"
    assert registry.run("transfer_call", {}, ctx).ok and ctx.transfer_to == "2000" and seen == ["2000"]


def test_tool_timeout_is_a_failed_result():
    @tool("sleepy")
    def sleepy(args, ctx):
        """Sleeps."""
        gevent.sleep(5)

    reg = ToolRegistry([sleepy], timeout=0.05)
    res = reg.run("sleepy", {}, ToolContext())
    assert not res.ok and "timed out" in res.value["error"]


def test_tool_not_enabled_for_the_profile_is_refused(registry):
    res = registry.run("add_numbers", {"a": 1, "b": 2}, ToolContext(), allowed=["get_datetime"])
    assert not res.ok and "unknown tool" in res.value["error"]


def test_decorator_needs_a_description_and_a_sane_name():
    with pytest.raises(PluginError):
        tool("x")(lambda args, ctx: "")
    with pytest.raises(PluginError):
        Tool("bad name!", "d", BaseModel, lambda a, c: "")


def test_registering_the_same_name_twice_raises():
    class A(BaseModel):
        x: int = Field(1)

    t = Tool("t1", "d", A, lambda a, c: a.x)
    reg = ToolRegistry([t])
    with pytest.raises(PluginError, match="duplicate tool name 't1'"):
        reg.add(Tool("t1", "d", A, lambda a, c: 2))
    assert reg.run("t1", '{"x": 7}', ToolContext()).content == "7"
