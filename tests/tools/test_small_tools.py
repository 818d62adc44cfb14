"""The joke, repeat-after-me, date-and-time and transfer built-ins, through ToolRegistry.run."""
from datetime import datetime, timezone

import pytest

from voiceagent.dialog.profiles import Profile
from voiceagent.dialog.tools import FixedClock, ToolContext


@pytest.fixture
def reg(make_registry):
    return make_registry()


def test_every_builtin_is_registered_with_a_capability(reg):
    assert reg.names() == ["calculate", "cancel_scheduled", "get_datetime", "get_weather", "hang_up",
                           "home_assistant", "home_control", "home_status", "list_scheduled", "repeat_after_me", "schedule_briefing", "schedule_callback", "set_timer",
                           "tell_joke", "transfer_call"] and not reg.errors
    for name in reg.names():
        cap = reg.get(name).capability
        assert cap and cap[0].islower() and not cap.endswith("."), (name, cap)


# --- joke ---------------------------------------------------------------------------------------------

def test_a_joke_is_deterministic_for_a_call_and_minute(reg, ctx):
    first = reg.run("tell_joke", {}, ToolContext(call_id="c1", clock=ctx.clock)).speak
    again = reg.run("tell_joke", {}, ToolContext(call_id="c1", clock=ctx.clock)).speak
    assert first == again and first.endswith(".")
    others = {reg.run("tell_joke", {}, ToolContext(call_id=f"c{i}", clock=ctx.clock)).speak for i in range(30)}
    assert len(others) > 3  # the seed really varies the joke


def test_one_call_hears_no_joke_twice_until_all_are_told(reg, ctx):
    told = [reg.run("tell_joke", {}, ctx) for _ in range(12)]
    assert all(r.ok for r in told)
    assert len({r.value["data"]["joke"] for r in told}) == 12
    assert reg.run("tell_joke", {}, ctx).ok  # then it starts over


# --- repeat -------------------------------------------------------------------------------------------

def test_repeat_says_the_words_verbatim(reg, ctx):
    res = reg.run("repeat_after_me", {"text": "  Order number  A-113,\tplease. "}, ctx)
    assert res.ok and res.speak == "Order number A-113, please."


@pytest.mark.parametrize("arguments, why", [
    ({"text": "x" * 301}, "at most 300 characters"),
    ({"text": ""}, "at least 1 character"),
    ({"text": " ... !!"}, "no letters or digits"),
    ({}, "Field required"),
    ({"text": 42}, "valid string"),
])
def test_repeat_refuses_bad_text(reg, ctx, arguments, why):
    res = reg.run("repeat_after_me", arguments, ctx)
    assert not res.ok and why in res.value["error"], res.value


# --- date and time ------------------------------------------------------------------------------------

JULY = FixedClock(datetime(2024, 7, 1, 3, 30, tzinfo=timezone.utc))


def test_datetime_defaults_to_the_profile_zone(reg):
    res = reg.run("get_datetime", {}, ToolContext(timezone="America/New_York", clock=JULY))
    assert res.ok and res.value["time"] == "11:30 PM" and res.value["weekday"] == "Sunday"
    assert res.value["timezone"] == "America/New_York"


@pytest.mark.parametrize("zone, time, resolved", [
    ("Asia/Tokyo", "12:30 PM", "Asia/Tokyo"), ("tokyo", "12:30 PM", "Asia/Tokyo"),
    ("New York", "11:30 PM", "America/New_York"), ("europe/london", "4:30 AM", "Europe/London"),
    ("America/Los Angeles", "8:30 PM", "America/Los_Angeles"), ("", "11:30 PM", "America/New_York"),
])
def test_datetime_in_another_zone_or_city(reg, zone, time, resolved):
    res = reg.run("get_datetime", {"timezone": zone}, ToolContext(timezone="America/New_York", clock=JULY))
    assert res.ok and res.value["time"] == time and res.value["timezone"] == resolved, res.value


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Atlantis", "../../etc/passwd", "x" * 65, "Tokyo; rm"])
def test_datetime_refuses_an_unknown_zone(reg, zone):
    res = reg.run("get_datetime", {"timezone": zone}, ToolContext(clock=JULY))
    assert not res.ok and "timezone" in res.value["error"], res.value


# --- transfer and hang up -----------------------------------------------------------------------------

@pytest.mark.parametrize("target, dest", [("front desk", "2000"), ("The Front-Desk", "2000"), ("billing", "2001"),
                                          ("BILLING", "2001"), (None, "2000")])
def test_transfer_goes_to_a_configured_name(reg, ctx, target, dest):
    seen = []
    ctx.on_transfer = seen.append
    res = reg.run("transfer_call", {} if target is None else {"target": target}, ctx)
    assert res.ok and ctx.transfer_to == dest and seen == [dest], res.value


@pytest.mark.parametrize("target", ["sales", "+15551234567", "sofia/gateway/x/0900", "2000"])
def test_transfer_refuses_anything_not_configured(reg, ctx, target):
    res = reg.run("transfer_call", {"target": target}, ctx)
    assert not res.ok and ctx.transfer_to is None
    assert "choose one of: front desk, Billing" in res.value["error"]


def test_transfer_is_unavailable_without_targets(reg):
    t = reg.get("transfer_call")
    assert not t.available(Profile(name="p")) and t.available(Profile(name="p", transfer_targets={"desk": "1"}))
    res = reg.run("transfer_call", {}, ToolContext(profile=Profile(name="p")))
    assert not res.ok and "not available" in res.value["error"]


def test_hang_up_only_records_the_request(reg, ctx):
    res = reg.run("hang_up", {}, ctx)
    assert res.ok and ctx.hangup_reason == "assistant" and ctx.transfer_to is None
