"""The event stream: consumer groups lose nothing and keep one call's order."""
import time

from voiceagent.records.events import CallDialing, CallEnded, CallRinging, parse, encode
from voiceagent.records.models import Outcome


def _publish(client, cid, n):
    for i in range(n):
        client.stream.publish(CallDialing(call_id=cid, at=time.time(), to=str(i)))


def test_a_late_consumer_reads_every_event_from_its_groups_position(client):
    _publish(client, "c1", 5)
    got = client.stream.read("late", "a", block_ms=100)
    assert [ev.to for _, ev in got] == ["0", "1", "2", "3", "4"]


def test_unacknowledged_events_come_back_to_their_consumer(client):
    _publish(client, "c1", 3)
    first = client.stream.read("g", "a", block_ms=100)
    assert len(first) == 3
    client.stream.ack("g", first[0][0])
    again = client.stream.read("g", "a", block_ms=100)  # "a" crashed before acking the rest
    assert [eid for eid, _ in again] == [eid for eid, _ in first[1:]]
    client.stream.ack("g", *[eid for eid, _ in again])
    assert client.stream.read("g", "a", block_ms=100) == []


def test_a_dead_consumers_events_are_taken_over(client):
    _publish(client, "c1", 2)
    client.stream.read("g", "dead", block_ms=100)
    time.sleep(0.05)  # the entries must be idle longer than stale_ms (50 ms) to be taken over
    stolen = client.stream.read("g", "alive", block_ms=100, stale_ms=20)
    assert len(stolen) == 2


def test_one_calls_events_arrive_in_order(client):
    for cid in ("a", "b"):
        client.stream.publish(CallDialing(call_id=cid, at=1.0))
        client.stream.publish(CallRinging(call_id=cid, at=2.0))
        client.stream.publish(CallEnded(call_id=cid, at=3.0, outcome=Outcome.NO_ANSWER))
    got = [ev for _, ev in client.stream.read("g", "x", block_ms=100)]
    for cid in ("a", "b"):
        assert [e.type for e in got if e.call_id == cid] == ["call.dialing", "call.ringing", "call.ended"]


def test_unreadable_entries_are_skipped_and_acknowledged(client):
    client.r.xadd(client.stream.key, {"type": "call.bogus", "data": "{}"})
    _publish(client, "c1", 1)
    got = client.stream.read("g", "x", block_ms=100)
    assert [ev.type for _, ev in got] == ["call.dialing"]


def test_events_round_trip_with_version():
    ev = CallEnded(call_id="x", at=1.5, outcome=Outcome.BUSY, hangup_cause="USER_BUSY")
    back = parse({b"data": encode(ev)["data"].encode()})
    assert back == ev and back.v == 1
