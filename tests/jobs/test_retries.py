"""Retries per outcome: the follower (``voiceagent jobs follow``) queues the next attempt of a busy or
unanswered call as its request's policy says; each attempt is its own call, linked both ways."""
import pytest
import redis

from tests.fork_helpers import wait_until
from voiceagent.jobs.follower import GROUP, Follower
from voiceagent.records.events import CallEnded, CallQueued
from voiceagent.records.models import Outcome


def _chain(client, first_id):
    out, cid = [], first_id
    while cid:
        rec = client.get(cid)
        if rec is None:
            break
        out.append(rec)
        cid = rec.next_attempt
    return out


def _follower_caught_up(r, client):
    """The follower's group has been given every entry and acknowledged them all."""
    groups = {g["name"].decode(): g for g in r.xinfo_groups(client.keys.events)}
    g = groups.get(GROUP)
    return g is not None and g["pending"] == 0 and g["last-delivered-id"].decode() == client.stream.last_id()


def _start_follower(procs, client):
    procs.start("jobs", "follow")
    r = redis.Redis()
    assert wait_until(lambda: r.exists(client.keys.events) and any(
        g["name"].decode() == GROUP for g in r.xinfo_groups(client.keys.events)), 30), "follower never joined"


@pytest.mark.parametrize("script,outcome,rule,attempts", [
    ("busy", Outcome.BUSY, "busy", 3),              # attempts: 2 retries after busy -> 3 calls
    ("no_answer", Outcome.NO_ANSWER, "no_answer", 2),
])
def test_a_failed_attempt_is_retried_per_policy_each_attempt_a_linked_call_with_its_honest_outcome(
        make_emulator, make_worker, procs, queue, script, outcome, rule, attempts):
    emu = make_emulator(speed=20.0)
    number = "+15550401"
    emu.script_destination(number, outcome=script)
    make_worker([emu], originate_gateway="carrier1")
    q = queue()
    q.client.stream.ensure_group("setup", start="$")  # the stream exists before the follower's group
    _start_follower(procs, q.client)
    procs.rq_worker()  # with RQ's scheduler: the retries are enqueued for later
    policy = {rule: {"attempts": attempts - 1, "delay_seconds": 1}, "failed": {"attempts": 5, "delay_seconds": 1}}
    first = q.dispatcher.submit({"to": number, "ring_timeout": 5, "retry": policy}, priority="bulk")
    assert wait_until(lambda: len(chain := _chain(q.client, first)) == attempts and chain[-1].ended, 60), \
        [(r.attempt, r.state, r.outcome) for r in _chain(q.client, first)]
    assert wait_until(lambda: _follower_caught_up(q.r, q.client), 20)
    recs = _chain(q.client, first)
    assert len(recs) == attempts, "no attempt after the policy's last"
    assert [r.attempt for r in recs] == list(range(1, attempts + 1))
    assert [r.outcome for r in recs] == [outcome] * attempts
    assert all(r.answered_at is None and r.duration == 0 for r in recs)
    assert all(r.first_attempt == first for r in recs[1:]) and recs[0].first_attempt is None
    assert [r.previous_attempt for r in recs] == [None] + [r.id for r in recs[:-1]]
    assert [r.next_attempt for r in recs] == [r.id for r in recs[1:]] + [None]
    assert {r.priority for r in recs} == {"bulk"} and len({r.id for r in recs}) == attempts
    dialed = [ch.uuid for ch in emu.all_channels() if ch.destination == number]
    assert dialed == [r.id for r in recs], "each attempt dialed once, with its own uuid"


def test_the_follower_keeps_a_failing_handlers_entry_and_retries_only_that_handler(queue):
    q = queue()
    seen = {"ok": [], "flaky": []}
    fail_once = {"c1"}

    def ok(entry_id, event):
        seen["ok"].append(event.call_id)

    def flaky(entry_id, event):
        seen["flaky"].append(event.call_id)
        if event.call_id in fail_once:
            fail_once.discard(event.call_id)
            raise RuntimeError("webhook endpoint down")

    f = Follower(q.client, [("ok", ok), ("flaky", flaky)], group="t-follow", consumer="c", retry_seconds=0.0,
                 block_ms=10)
    q.client.stream.ensure_group("setup", start="$")
    f.ensure_group()
    q.client.stream.publish(CallEnded(call_id="c1", at=1.0, outcome=Outcome.BUSY))
    q.client.stream.publish(CallQueued(call_id="c2", at=2.0, to="+1555", priority="high", request_deadline=9.0))
    f._next_retry = float("inf")  # new entries first: c1 fails, c2 is handled all the same
    assert f.step() == 2
    assert seen == {"ok": ["c1", "c2"], "flaky": ["c1", "c2"]}
    pending = q.r.xpending(q.client.keys.events, "t-follow")
    assert pending["pending"] == 1, "the failed entry stays unacknowledged"
    f._next_retry = 0.0
    assert f.step() == 1  # the retry: only the handler that failed runs again
    assert seen == {"ok": ["c1", "c2"], "flaky": ["c1", "c2", "c1"]}
    assert q.r.xpending(q.client.keys.events, "t-follow")["pending"] == 0
