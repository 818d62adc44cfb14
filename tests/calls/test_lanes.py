"""CallLanes: per-call delivery in wire order; a stuck call is given up loudly, never silently."""
import logging

import gevent
import gevent.event

from voiceagent.calls.lanes import CallLanes
from voiceagent.telephony import events as fs_events
from voiceagent.telephony.eslwire import Event


def _ev(call_id, seq):
    return Event([("Event-Name", "DTMF"), ("Unique-ID", call_id), ("Seq", str(seq))])


def _spawn(fn, *args, call_id=None):
    return gevent.spawn(fn, *args)


def test_events_in_order_per_call_and_a_blocked_call_holds_only_itself():
    gate = gevent.event.Event()
    got = {"a": [], "b": []}

    def deliver(ev):
        if ev.uuid == "a":
            gate.wait()
        got[ev.uuid].append(int(ev.get("Seq")))

    lanes = CallLanes(_spawn, deliver, lambda c, n: None, limit=100)
    for i in range(50):
        lanes.put("a", _ev("a", i))
        lanes.put("b", _ev("b", i))
    with gevent.Timeout(5):
        while len(got["b"]) < 50:
            gevent.sleep(0.01)
    assert got["b"] == list(range(50)) and got["a"] == []
    gate.set()
    with gevent.Timeout(5):
        while len(lanes):
            gevent.sleep(0.01)
    assert got["a"] == list(range(50))


def test_a_stuck_call_is_given_up_once_and_its_dropped_events_are_counted(caplog):
    gate, entered = gevent.event.Event(), gevent.event.Event()
    stuck = []

    def deliver(ev):
        entered.set()
        gate.wait()

    lanes = CallLanes(_spawn, deliver, lambda c, n: stuck.append((c, n)), limit=10)
    with caplog.at_level(logging.ERROR, logger="voiceagent.calls.lanes"):
        lanes.put("a", _ev("a", 0))
        assert entered.wait(5)  # the lane's greenlet took the first event and blocks on it
        for i in range(1, 30):
            lanes.put("a", _ev("a", i))
        assert lanes.pending("a") == 10, "the lane grew past its limit"
        assert stuck == [("a", 10)]
        gate.set()
        with gevent.Timeout(5):
            while len(lanes):
                gevent.sleep(0.01)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "stuck" in text and "19 events of this call were dropped" in text, text


def test_a_failing_handler_is_logged_and_the_lane_goes_on(caplog):
    # the worker's lanes carry typed events (telephony.events), not wire events
    got, done = [], gevent.event.Event()

    def deliver(ev):
        if ev.digit == "0":
            raise RuntimeError("handler failed")
        got.append(ev.digit)
        if ev.digit == "2":
            done.set()

    lanes = CallLanes(_spawn, deliver, lambda c, n: None, limit=100)
    with caplog.at_level(logging.ERROR, logger="voiceagent.calls.lanes"):
        for i in range(3):
            lanes.put("a", fs_events.parse(Event([("Event-Name", "DTMF"), ("Unique-ID", "a"),
                                                  ("DTMF-Digit", str(i))])))
        assert done.wait(5), f"the lane stopped after the failing event: {got}"
    assert got == ["1", "2"]
    assert any("handling DTMF (Dtmf) failed" in r.getMessage() for r in caplog.records)
