"""The scheduling tools against the real schedules service (Redis, the RQ jobs armed): timers and callbacks
are owned schedules, each caller sees and cancels only their own, bounds and the dial policy refuse in
words, a briefing is a recurring schedule running get_weather."""
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import redis

from voiceagent.records.keys import Keys
from voiceagent.schedules import runner, spoken
from voiceagent.schedules.models import Schedule
from voiceagent.schedules.service import Schedules

ANN = "+15551230001"
BOB = "+15551230002"


def _data(result):
    assert result.ok, result.value
    return result.value["data"]


def test_a_timer_is_a_persisted_schedule_owned_by_the_caller_and_armed(make_schedules, registry, call_ctx,
                                                                       redis_prefix):
    s, sv = make_schedules()
    ctx = call_ctx(s, sv, caller="+1 (555) 123-0001", call_id="call-ann")
    before = time.time()
    data = _data(registry.run("set_timer", {"minutes": 10, "label": "the oven"}, ctx))
    assert data["done"] and data["kind"] == "timer" and data["description"] == "a timer for the oven in 10 minutes"
    # persisted in Redis as a schedule (the key the schedules service keeps until deleted) and armed as its job
    raw = redis.Redis().get(Keys(redis_prefix).schedule(data["id"]))
    sched = Schedule.model_validate_json(raw)
    assert sched.kind == "timer" and sched.owner == ANN and sched.origin_call == "call-ann"
    assert before + 600 <= sched.next_due <= time.time() + 601 and sched.state == "active"
    assert sched.call.to == ANN and "the oven" in sched.notice and "the oven" in sched.call.message
    # another process (a restarted worker) sees the same: the reconciler finds its run armed
    again = Schedules.from_settings(s)
    assert again.armer.waiting(sched.id, sched.next_due)
    assert runner.reconcile(again, time.time()) == []


def test_one_caller_can_neither_list_nor_cancel_anothers_items(make_schedules, registry, call_ctx):
    s, sv = make_schedules()
    ann = call_ctx(s, sv, caller=ANN, call_id="call-ann")
    bob = call_ctx(s, sv, caller=BOB, call_id="call-bob")
    timer = _data(registry.run("set_timer", {"minutes": 8, "label": "the oven"}, ann))
    call_back = _data(registry.run("schedule_callback", {"reason": "the invoice", "in_minutes": 60}, ann))
    mine = _data(registry.run("list_scheduled", {}, bob))
    assert mine["items"] == [] and mine["summary"] == "You have no timers, callbacks or briefings."
    for args in ({"item_id": timer["id"]}, {"item_id": call_back["id"]}, {"what": "the oven timer"},
                 {"what": "callback"}):
        assert _data(registry.run("cancel_scheduled", args, bob))["done"] is False, args
    for item in (timer, call_back):
        kept = sv.store.get(item["id"])
        assert kept is not None and sv.armer.waiting(kept.id, kept.next_due)
    # Ann on a call back to her (outbound, her number written nationally) sees and cancels her own
    ann_later = call_ctx(s, sv, caller="+15551230000", callee="5551230001", direction="outbound",
                         call_id="call-ann-2")
    listed = _data(registry.run("list_scheduled", {}, ann_later))
    assert [i["id"] for i in listed["items"]] == [timer["id"], call_back["id"]]
    assert listed["summary"].startswith("You have a timer for the oven in 8 minutes and a callback "), listed
    gone = _data(registry.run("cancel_scheduled", {"what": "the oven timer"}, ann_later))
    assert gone["done"] and gone["id"] == timer["id"]
    assert sv.store.get(timer["id"]) is None and not sv.armer.waiting(timer["id"], timer["next_due"])
    assert [i["id"] for i in _data(registry.run("list_scheduled", {}, ann))["items"]] == [call_back["id"]]


def test_durations_are_bounded_and_a_refusal_is_said_not_raised(make_schedules, registry, call_ctx):
    s, sv = make_schedules()
    ctx = call_ctx(s, sv, caller=ANN)
    short = _data(registry.run("set_timer", {"seconds": 3, "label": "tea"}, ctx))
    assert short["done"] is False and "at least 5 seconds" in short["refused"]
    for args in ({"minutes": 24 * 60 + 1, "label": "x"}, {"seconds": 86401, "label": "x"},
                 {"minutes": 0, "label": "x"}, {"minutes": 5}):
        res = registry.run("set_timer", args, ctx)
        assert not res.ok and "invalid arguments" in res.value["error"], (args, res.value)
    assert not registry.run("schedule_callback", {"reason": "x", "in_minutes": 5, "at": "15:00"}, ctx).ok
    assert not registry.run("schedule_callback", {"reason": "x", "at": "25:00"}, ctx).ok
    nobody = call_ctx(s, sv, caller="anonymous")
    refused = _data(registry.run("set_timer", {"minutes": 1, "label": "tea"}, nobody))
    assert refused["done"] is False and "phone number" in refused["refused"]
    assert sv.store.ids() == []  # nothing was scheduled by any of them
    s2, sv2 = make_schedules(timer_min_seconds=1)  # TIMER_MIN_SECONDS: what the firing tests use
    assert _data(registry.run("set_timer", {"seconds": 2, "label": "tea"}, call_ctx(s2, sv2, caller=ANN)))["done"]


def test_a_callback_goes_to_the_caller_and_to_another_number_only_if_the_policy_allows(make_schedules, registry,
                                                                                       call_ctx):
    s, sv = make_schedules(dial_allowed_patterns=r"\+1555123\d{4}")
    ctx = call_ctx(s, sv, caller=ANN)
    mine = _data(registry.run("schedule_callback", {"reason": "the invoice", "in_minutes": 30}, ctx))
    sched = sv.store.get(mine["id"])
    assert sched.kind == "callback" and sched.owner == ANN and sched.call.to == ANN
    assert "the invoice" in sched.call.message and "the invoice" in sched.call.instructions
    other = _data(registry.run("schedule_callback", {"reason": "dinner", "in_minutes": 30, "number": BOB}, ctx))
    assert other["done"] and sv.store.get(other["id"]).call.to == BOB and sv.store.get(other["id"]).owner == ANN
    refused = _data(registry.run("schedule_callback", {"reason": "x", "in_minutes": 30, "number": "+4930123456"},
                                 ctx))
    assert refused["done"] is False and "not allowed to call" in refused["refused"]
    at = _data(registry.run("schedule_callback", {"reason": "the offer", "at": "23:59"}, ctx))
    due = sv.store.get(at["id"]).next_due
    assert 0 < due - time.time() <= 86400
    assert datetime.fromtimestamp(due, ZoneInfo("America/New_York")).strftime("%H:%M") == "23:59"
    assert len(sv.store.ids()) == 3  # the refused one was not made


def test_a_weekday_weather_briefing_is_a_recurring_schedule_cancelled_by_voice(make_schedules, registry, call_ctx):
    s, sv = make_schedules()
    ctx = call_ctx(s, sv, caller=ANN, timezone="Europe/Berlin")
    data = _data(registry.run("schedule_briefing", {"every": "weekdays", "time": "7:00"}, ctx))
    assert data["description"] == "a weather briefing every weekday at 7 am"
    sched = sv.store.get(data["id"])
    assert sched.kind == "briefing" and sched.when.recurring and sched.timezone == "Europe/Berlin"
    assert sched.call.tool.name == "get_weather" and sched.call.tool.arguments == {}
    assert sv.armer.waiting(sched.id, sched.next_due)
    gone = _data(registry.run("cancel_scheduled", {"what": "the weather briefing"}, ctx))
    assert gone["done"] and sv.store.get(sched.id) is None


def test_the_status_sentence_reads_naturally():
    now = 1_777_000_000.0  # a fixed clock

    def item(kind, name, due, **kw):
        return Schedule.model_validate({"id": name, "name": name, "kind": kind, "created": now, "updated": now,
                                        "anchor": now, "next_due": int(due), "timezone": "UTC",
                                        "when": kw.pop("when", {"at": "2099-01-01T00:00:00Z"}),
                                        "call": {"to": ANN}, **kw})
    at_3pm = int(now // 86400 * 86400 + 15 * 3600)
    items = [item("callback", "the invoice", at_3pm + 86400), item("timer", "the oven", now + 480)]
    assert spoken.summary(items, now) == ("You have a timer for the oven in 8 minutes and a callback "
                                          "tomorrow at 3 pm about the invoice.")
    assert spoken.when_words(now + 20, now, ZoneInfo("UTC")) == "in 20 seconds"
