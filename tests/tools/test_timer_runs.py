"""A timer's run job (schedules/runner.py) against the live-call records the voice workers write (calls/inbox.py
CallStore, real Redis): said into the call it was set in, else into another live call of the same person,
else a call back through the dispatcher on the high queue.  The e2e tests (tests/e2e/test_timer_calls.py) hear it."""
import json

import redis

from voiceagent.calls.inbox import CallStore
from voiceagent.records.keys import Keys
from voiceagent.schedules import runner

ANN = "+15551230001"


def _live(store, call_id, worker, **fields):
    store.heartbeat(worker, {"calls": 1})
    store.register({"id": call_id, "node": "fs1", "worker": worker, "direction": "inbound", "caller": ANN,
                    "callee": "+15551230000", "state": "active", "started": "0", **fields})


def _inbox(r, prefix, worker):
    return [json.loads(x) for x in r.lrange(Keys(prefix).inbox(worker), 0, -1)]


def _timer(registry, call_ctx, s, sv, **ctx_kw):
    res = registry.run("set_timer", {"minutes": 5, "label": "the oven"}, call_ctx(s, sv, caller=ANN, **ctx_kw))
    assert res.ok, res.value
    return sv.store.get(res.value["data"]["id"])


def test_a_timer_is_said_into_the_call_it_was_set_in(make_schedules, registry, call_ctx, redis_prefix):
    s, sv = make_schedules()
    r = redis.Redis()
    store = CallStore(r, redis_prefix)
    _live(store, "call-ann", "w1")
    _live(store, "call-other", "w2", caller="+15559990000")
    sched = _timer(registry, call_ctx, s, sv, call_id="call-ann")
    assert runner.run(sv, sched.id, sched.next_due, sched.next_due + 1) == "said"
    said = _inbox(r, redis_prefix, "w1")
    assert [(m["call_id"], m["command"]) for m in said] == [("call-ann", {"type": "say",
                                                                          "text": "Your timer for the oven is up."})]
    assert _inbox(r, redis_prefix, "w2") == []
    run = sv.store.run(sched.id, sched.next_due)
    assert run.status == "said" and run.call_id == "call-ann"
    assert sv.store.get(sched.id).state == "finished"
    assert sv.dispatcher.client.records.ids_between(0, float("inf"), limit=10) == []  # nobody was dialed


def test_after_a_hang_up_it_is_said_into_another_live_call_of_the_same_person(make_schedules, registry, call_ctx,
                                                                              redis_prefix):
    s, sv = make_schedules()
    r = redis.Redis()
    store = CallStore(r, redis_prefix)
    _live(store, "call-ann", "w1")
    sched = _timer(registry, call_ctx, s, sv, call_id="call-ann")
    store.remove("call-ann")  # she hung up ...
    _live(store, "call-stranger", "w2", caller="+15559990000")
    _live(store, "call-back", "w2", direction="outbound", caller="+15551230000", callee="5551230001")  # ... is back
    assert runner.run(sv, sched.id, sched.next_due, sched.next_due + 1) == "said"
    assert [m["call_id"] for m in _inbox(r, redis_prefix, "w2")] == ["call-back"]
    assert sv.store.run(sched.id, sched.next_due).call_id == "call-back"


def test_with_the_caller_off_the_line_the_timer_calls_them_back_on_the_high_queue(make_schedules, registry,
                                                                                 call_ctx, redis_prefix):
    s, sv = make_schedules()
    r = redis.Redis()
    store = CallStore(r, redis_prefix)
    _live(store, "call-ann", "w1", state="ending")  # hanging up: too late to say anything into it
    sched = _timer(registry, call_ctx, s, sv, call_id="call-ann")
    assert runner.run(sv, sched.id, sched.next_due, sched.next_due + 1) == "placed"
    run = sv.store.run(sched.id, sched.next_due)
    rec = sv.dispatcher.client.get(run.call_id)
    assert rec.priority == "high" and rec.to == ANN and rec.state == "queued"
    assert "Your timer for the oven is up." in rec.request.message and "the oven" in rec.request.instructions
    assert _inbox(r, redis_prefix, "w1") == []
    # the job again (a retry): the same call, nothing dialed twice
    assert runner.run(sv, sched.id, sched.next_due, sched.next_due + 2) == "done"
    assert sv.dispatcher.client.records.ids_between(0, float("inf"), limit=10) == [run.call_id]
