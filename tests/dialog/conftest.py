"""Fixtures: a real scripted OpenAI-compatible server on loopback, reached through litellm."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from voiceagent.dialog.conversation import Conversation
from voiceagent.dialog.llm import LlmClient, litellm_module
from voiceagent.dialog.profiles import Profile
from voiceagent.dialog.tools import FixedClock, ToolContext, ToolRegistry, builtin_tools_dir
from voiceagent.testing.llm_server import ScriptedLlmServer

PLUGINS = Path(__file__).parent / "plugins"
NOW = datetime(2024, 3, 5, 14, 7, tzinfo=timezone.utc)  # 15:07 in Paris


@pytest.fixture(scope="session", autouse=True)
def _litellm_loaded():
    litellm_module()  # the slow import, once


@pytest.fixture
def server():
    with ScriptedLlmServer() as srv:
        yield srv


@pytest.fixture
def llm(server):
    return LlmClient(server.base_url, "scripted", timeout=5.0)


@pytest.fixture
def registry():
    reg = ToolRegistry(timeout=2.0)
    reg.load_dirs([builtin_tools_dir(), PLUGINS / "good"])
    assert not reg.errors, reg.errors
    return reg


@pytest.fixture
def profile():
    return Profile(
        name="test", timezone="Europe/Paris", greeting="Hi there!",
        prompt="You help. Time {local_time} {weekday} {date} in {timezone}; caller {caller}.",
        context="",  # everything in one system message (the default splits per-call facts out)
        tools=["get_datetime", "hang_up", "transfer_call", "add_numbers", "explode", "slow_lookup"],
        transfer_targets={"operator": "1001", "sales": "1002"},
        dtmf={"0": "transfer:operator", "9": "hangup", "5": "say:Our hours are nine to five."},
    )


@pytest.fixture
def clock():
    return FixedClock(NOW)


@pytest.fixture
def make_conv(llm, registry, profile, clock):
    def make(**kw):
        llm_ = kw.pop("llm", llm)
        prof = kw.pop("profile", profile)
        ctx = ToolContext(call_id="c1", caller="+15551234567", callee="1000", clock=clock)
        return Conversation(prof, llm_, registry, ctx, **{"max_tool_rounds": 3, "max_failures": 3, **kw})
    return make
