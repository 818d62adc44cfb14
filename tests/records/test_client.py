"""The call client and record store against real Redis: place, get, list, cancel, expiry, claims."""
import threading
import time

import pytest
import redis
from pydantic import ValidationError

from voiceagent.calls.inbox import CallNotFound
from voiceagent.records.models import CallRequest, Outcome
from voiceagent.records.store import end


def test_place_writes_a_requested_record_and_queues_it(client):
    cid = client.place({"to": "+15550100", "message": "Hello {name}", "variables": {"name": "Ann"}})
    rec = client.get(cid)
    assert rec.state == "requested" and rec.direction == "outbound" and rec.to == "+15550100"
    assert rec.request.fill(rec.request.message) == "Hello Ann"
    assert client.records.pending_count() == 1
    assert [r.id for r in client.list()] == [cid]


@pytest.mark.parametrize("bad, field", [
    ({"to": "1000; rm -rf"}, "to"),
    ({"to": "1000", "ring_timeout": 1}, "ring_timeout"),
    ({"to": "1000", "gateway": "gw}{x"}, "gateway"),
    ({"to": "1000", "surprise": 1}, "surprise"),
    ({"to": "1000", "variables": {"1bad": "x"}}, "variables"),
    ({"to": "1000", "choice": {"question": "?", "options": [{"value": "yes", "digit": "1"},
                                                            {"value": "no", "digit": "1"}]}}, "choice"),
])
def test_bad_requests_are_refused_naming_the_field(client, bad, field):
    with pytest.raises(ValidationError) as exc:
        client.place(bad)
    assert field in str(exc.value)
    assert client.records.pending_count() == 0


def test_idempotency_key_places_once(client):
    a = client.place({"to": "1000", "idempotency_key": "reminder-42"})
    b = client.place({"to": "1000", "idempotency_key": "reminder-42"})
    assert a == b and client.records.pending_count() == 1


def test_exactly_one_taker_per_request(client):
    ids = {client.place({"to": "1000"}) for _ in range(30)}
    taken = {"w1": [], "w2": [], "w3": []}

    def take(worker):
        while (cid := client.records.take_request(worker, claim_ttl=60)) is not None:
            taken[worker].append(cid)

    threads = [threading.Thread(target=take, args=(w,)) for w in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    got = [c for lst in taken.values() for c in lst]
    assert sorted(got) == sorted(ids)  # every request taken, none twice
    for w, lst in taken.items():
        assert all(client.records.taker(c) == w for c in lst)


def test_cancel_of_a_queued_request_ends_it_and_unqueues(client):
    cid = client.place({"to": "1000"})
    rec = client.cancel(cid)
    assert rec.ended and rec.outcome == Outcome.CANCELED
    assert client.records.take_request("w", 60) is None
    with pytest.raises(CallNotFound):
        client.cancel("no-such-call")


def test_expired_requests_fail_once_with_a_reason(client):
    cid = client.place({"to": "1000", "deadline_seconds": 0.2})
    t0 = time.monotonic()
    rec = client.wait(cid, timeout=10)
    assert time.monotonic() - t0 < 5
    assert rec.outcome == Outcome.FAILED and "deadline" in rec.reason
    assert client.expire_requests() == []


def test_wait_times_out_naming_the_state(client):
    cid = client.place({"to": "1000", "deadline_seconds": 60})
    with pytest.raises(TimeoutError, match="requested"):
        client.wait(cid, timeout=0.3)


def test_end_keeps_the_first_outcome(client):
    cid = client.place({"to": "1000"})

    def finish(outcome):
        def change(rec):
            end(rec, outcome, cause="X")
        return change

    client.records.update(cid, finish(Outcome.BUSY))
    client.records.update(cid, finish(Outcome.FAILED))
    rec = client.get(cid)
    assert rec.outcome == Outcome.BUSY and [h.state for h in rec.history].count("ended") == 1
    assert cid not in client.records.open_ids()


def test_list_filters(client):
    a = client.place({"to": "1000"})
    b = client.place({"to": "1001"})
    client.cancel(b)
    assert [r.id for r in client.list(outcome="canceled")] == [b]
    assert [r.id for r in client.list(state="requested")] == [a]
    assert client.list(direction="inbound") == []


def test_a_corrupt_record_is_ignored_not_fatal(client, prefix):
    cid = client.place({"to": "1000"})
    redis.Redis().set(client.keys.record(cid), b"{not json")
    assert client.get(cid) is None
    assert client.list() == []


def test_request_model_fill_leaves_unknown_placeholders():
    req = CallRequest(to="1000", variables={"a": "1"})
    assert req.fill("{a} {b}") == "1 {b}"
