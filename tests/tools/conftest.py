"""Fixtures of the scheduling-tool tests: a Redis prefix, the emulator and voice workers, the schedules
service, a call's tool context with its scheduler."""
import pytest

from tests.calls.conftest import make_emulator, make_worker, redis_prefix  # noqa: F401 - fixtures
from voiceagent.config import load_settings
from voiceagent.dialog.tools import ToolContext, ToolRegistry, builtin_tools_dir
from voiceagent.schedules.caller import SchedulerHook
from voiceagent.schedules.service import Schedules


@pytest.fixture
def make_schedules(redis_prefix):  # noqa: F811
    """``make_schedules(**settings)``: (settings, Schedules) of this test's prefix."""
    def make(**overrides):
        s = load_settings(redis_prefix=redis_prefix, **overrides)
        return s, Schedules.from_settings(s)
    return make


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
