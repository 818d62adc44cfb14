"""Fixtures for the built-in tool plugins: the registry loaded from tools/ (with the environment the test
set), a context with a fixed clock, the local Tempest stand-in."""
from datetime import datetime, timezone

import pytest

from voiceagent.dialog.profiles import Profile
from voiceagent.dialog.tools import FixedClock, ToolContext, ToolRegistry, builtin_tools_dir

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
def weather_registry(make_registry, tempest):
    return make_registry(tempest_station_id="118512", tempest_token="tok-123", tempest_base_url=tempest.base_url)


@pytest.fixture
def ctx():
    profile = Profile(name="t", timezone="America/Chicago",
                      transfer_targets={"front desk": "2000", "Billing": "2001"})
    return ToolContext(timezone="America/Chicago", clock=FixedClock(NOW), profile=profile)
