"""Fixtures: the local Home Assistant stand-in, the plugin registered with this test's HA_* environment, and a
call's tool context whose monotonic clock the test moves (confirmation timeouts without waiting)."""
import os

import pytest

from voiceagent.dialog.profiles import Profile
from voiceagent.dialog.tools import Clock, ToolContext, ToolRegistry, builtin_tools_dir

from .ha_server import TOKEN, HomeAssistantStandIn

PLUGIN = builtin_tools_dir() / "home_assistant.py"


class SteppedClock(Clock):
    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t


@pytest.fixture
def ha():
    srv = HomeAssistantStandIn().start()
    yield srv
    srv.stop()


@pytest.fixture
def make_registry(monkeypatch, ha):
    """``make_registry(**env)``: the plugin with HA_URL/HA_TOKEN of the stand-in (override or blank them)."""

    def make(**env):
        for name in list(os.environ):
            if name.startswith("HA_"):
                monkeypatch.delenv(name)
        env = {"ha_url": ha.url, "ha_token": TOKEN, "ha_timeout": 2, **env}
        for name, value in env.items():
            monkeypatch.setenv(name.upper(), str(value))
        reg = ToolRegistry(timeout=5.0)
        reg.load_file(PLUGIN)
        return reg
    return make


@pytest.fixture
def direct(make_registry):
    return make_registry(ha_mode="direct", ha_allow_domains="light,lock,cover,climate,sensor,binary_sensor,weather",
                         ha_cache_seconds=0)


@pytest.fixture
def ctx():
    return ToolContext(call_id="call-ha-1", caller="+15551230007", callee="+15551230000",
                       profile=Profile(name="home", language="en"), clock=SteppedClock())
