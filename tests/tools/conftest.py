"""Fixtures for the built-in tool plugins: the registry loaded from tools/ (with the environment the test
set), a context with a fixed clock, the local Tempest stand-in; and for the scheduling tools: a Redis prefix,
the emulator and voice workers, the schedules service, a call's tool context with its scheduler."""
from datetime import datetime, timezone

import pytest

from tests.calls.conftest import make_emulator, make_worker, redis_prefix  # noqa: F401 - fixtures
from voiceagent.config import load_settings
from voiceagent.dialog.profiles import Profile
from voiceagent.dialog.tools import FixedClock, ToolContext, ToolRegistry, builtin_tools_dir
from voiceagent.schedules.caller import SchedulerHook
from voiceagent.schedules.service import Schedules

from .tempest_server import TempestStandIn

# 9:45 pm in Storm Lake (America/Chicago), a quarter of an hour after the sample observation
NOW = datetime(2024, 11, 13, 3, 45, tzinfo=timezone.utc)
TEMPEST_VARS = ("TEMPEST_STATION_ID", "TEMPEST_TOKEN", "TEMPEST_BASE_URL", "TEMPEST_UNITS", "TEMPEST_LOCATION_NAME",
                "TEMPEST_TIMEOUT")


@pytest.fixture
def tempest():
    srv = TempestStandIn().start()
    yield srv
    srv.stop()


@pytest.fixture
def make_registry(monkeypatch):
    """``make_registry(**env)``: the built-ins registered with these environment variables (and no other
    TEMPEST_* the machine may have)."""

    def make(**env):
        for name in TEMPEST_VARS:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name.upper(), str(value))
        reg = ToolRegistry(timeout=5.0)
        reg.load_dirs([builtin_tools_dir()])
        return reg
    return make


@pytest.fixture
def make_schedules(redis_prefix):  # noqa: F811
    """``make_schedules(**settings)``: (settings, Schedules) of this test's prefix."""
    def make(**overrides):
        s = load_settings(redis_prefix=redis_prefix, **overrides)
        return s, Schedules.from_settings(s)
    return make


@pytest.fixture
def weather_registry(make_registry, tempest):
    return make_registry(tempest_station_id="118512", tempest_token="tok-123", tempest_base_url=tempest.base_url)


@pytest.fixture
def ctx():
    profile = Profile(name="t", timezone="America/Chicago",
                      transfer_targets={"front desk": "2000", "Billing": "2001"})
    return ToolContext(timezone="America/Chicago", clock=FixedClock(NOW), profile=profile)


@pytest.fixture
def registry():
    reg = ToolRegistry()
    reg.load_dirs([builtin_tools_dir()])
    assert not reg.errors, reg.errors
    return reg


@pytest.fixture
def call_ctx():
    """``call_ctx(settings, sv, caller=..., ...)``: a call's ToolContext with its scheduler, as the voice
    worker's hook makes it."""
    def make(settings, sv, *, caller="", callee="+15551230000", direction="inbound", call_id="call-1",
             timezone="America/New_York"):
        ctx = ToolContext(call_id=call_id, caller=caller, callee=callee, direction=direction, timezone=timezone)
        SchedulerHook(settings, schedules=sv)(ctx)
        return ctx
    return make
