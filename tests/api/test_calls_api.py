"""The calls resource over real HTTP and real Redis: placing, idempotency, listing with filters and
cursors, reading, cancelling and commanding a live call (its worker's inbox receives the command)."""
import json
import time
import uuid

import pytest

from voiceagent.calls.inbox import CallStore


def _place(api, body=None, **headers):
    return api.http.post(api.url + "/calls", json=body or {"to": "+15550100", "message": "Hello"}, headers=headers)


def test_post_calls_queues_a_request_and_answers_202_with_its_id(api):
    r = _place(api, {"to": "+15550100", "caller_id_number": "+15550999", "caller_id_name": "Clinic",
                     "profile": "default", "message": "Hello {name}", "instructions": "Confirm the visit.",
                     "choice": {"question": "Will you come?", "options": [{"value": "yes", "digit": "1"},
                                                                          {"value": "no", "digit": "2"}]},
                     "variables": {"name": "Ann"}, "ring_timeout": 20, "max_duration": 120})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["state"] == "queued" and r.headers["Location"] == f"/calls/{body['id']}"
    rec = api.client.get(body["id"])
    assert rec.request.choice.options[1].digit == "2" and rec.request.variables == {"name": "Ann"}
    assert rec.request.ring_timeout == 20 and rec.request.max_duration == 120
    assert api.waiting() == 1


def test_the_same_idempotency_key_gives_the_same_id_and_queues_once(api):
    ids = {_place(api, **{"Idempotency-Key": "visit-4711"}).json()["id"] for _ in range(3)}
    assert len(ids) == 1
    assert api.waiting() == 1
    other = _place(api, **{"Idempotency-Key": "visit-4712"}).json()["id"]
    assert other not in ids and api.waiting() == 2


def test_a_bad_idempotency_key_is_a_422_naming_the_header(api):
    r = _place(api, **{"Idempotency-Key": "k" * 200})
    assert r.status_code == 422
    assert [f["field"] for f in r.json()["error"]["fields"]] == ["Idempotency-Key"]


def test_a_number_the_dial_policy_refuses_is_a_422_naming_to(api):
    r = _place(api, {"to": "+19005551234", "message": "premium"})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_failed" and "dial policy" in err["message"]
    assert [f["field"] for f in err["fields"]] == ["to"] and "premium" in err["fields"][0]["message"]
    assert api.waiting() == 0 and api.client.list(limit=5) == []


@pytest.mark.parametrize("body,field", [
    ({"message": "no number"}, "to"),
    ({"to": "+1555; rm -rf"}, "to"),
    ({"to": "+15550100", "ring_timeout": 1}, "ring_timeout"),
    ({"to": "+15550100", "gateway": "evil"}, "gateway"),
    ({"to": "+15550100", "variables": {"a": 1}}, "variables.a"),
    ({"to": "+15550100", "choice": {"question": "q?", "options": [{"value": "a", "digit": "1"},
                                                                  {"value": "b", "digit": "12"}]}},
     "choice.options.1.digit"),
    ({"to": "+15550100", "profile": "../etc"}, "profile"),
])
def test_invalid_bodies_are_422_naming_the_field(api, body, field):
    r = _place(api, body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_failed"
    assert field in [f["field"] for f in err["fields"]], err
    assert api.waiting() == 0


def test_get_calls_filters_and_pages_with_an_opaque_cursor(api):
    ids = [_place(api, {"to": f"+1555010{i % 2}"}).json()["id"] for i in range(7)]
    api.http.delete(f"{api.url}/calls/{ids[0]}")
    seen, cursor = [], None
    while True:
        r = api.http.get(api.url + "/calls", params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["calls"]) <= 3
        seen += [c["id"] for c in page["calls"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids)), "every call once, newest first"
    only = api.http.get(api.url + "/calls", params={"number": "+15550101"}).json()["calls"]
    assert sorted(c["id"] for c in only) == sorted(ids[1::2])
    canceled = api.http.get(api.url + "/calls", params={"outcome": "canceled", "state": "ended"}).json()["calls"]
    assert [c["id"] for c in canceled] == [ids[0]]
    assert api.http.get(api.url + "/calls", params={"direction": "inbound"}).json()["calls"] == []
    future = api.http.get(api.url + "/calls", params={"since": time.time() + 60}).json()["calls"]
    past = api.http.get(api.url + "/calls", params={"until": "2001-01-01T00:00:00Z"}).json()["calls"]
    assert future == [] and past == []


@pytest.mark.parametrize("params,field", [({"limit": 101}, "limit"), ({"state": "bogus"}, "state"),
                                          ({"outcome": "completed"}, "outcome"), ({"since": "yesterday"}, "since"),
                                          ({"cursor": "%%%"}, "cursor"), ({"color": "red"}, "color")])
def test_bad_list_parameters_are_422_naming_them(api, params, field):
    r = api.http.get(api.url + "/calls", params=params)
    assert r.status_code == 422, r.text
    assert field in [f["field"] for f in r.json()["error"]["fields"]]


def test_get_a_call_returns_its_record_and_an_unknown_id_404(api):
    call_id = _place(api).json()["id"]
    r = api.http.get(f"{api.url}/calls/{call_id}")
    assert r.status_code == 200
    assert r.json()["id"] == call_id and r.json()["state"] == "queued" and r.json()["request"]["to"] == "+15550100"
    missing = api.http.get(f"{api.url}/calls/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_delete_cancels_a_queued_call_and_then_conflicts(api):
    call_id = _place(api).json()["id"]
    r = api.http.delete(f"{api.url}/calls/{call_id}")
    assert r.status_code == 202 and r.json()["state"] == "ended"
    rec = api.client.get(call_id)
    assert rec.outcome.value == "canceled" and api.waiting() == 0
    assert api.http.delete(f"{api.url}/calls/{call_id}").status_code == 409
    assert api.http.delete(f"{api.url}/calls/{uuid.uuid4()}").status_code == 404


def _live(api, call_id, worker="api-test-worker", alive=True):
    store = CallStore(api.client.r, api.prefix)
    store.register({"id": call_id, "node": "fs1", "worker": worker, "direction": "outbound", "state": "active"})
    if alive:
        store.heartbeat(worker, {"calls": 1, "max_calls": 4, "room": 3}, ttl=30)
    return store


@pytest.mark.parametrize("path,body,expected", [
    ("say", {"text": "One moment please"}, {"type": "say", "text": "One moment please"}),
    ("hangup", None, {"type": "hangup", "cause": "NORMAL_CLEARING"}),
    ("hangup", {"cause": "USER_BUSY"}, {"type": "hangup", "cause": "USER_BUSY"}),
    ("transfer", {"destination": "1000"}, {"type": "transfer", "destination": "1000"}),
])
def test_commands_reach_the_owning_workers_inbox(api, path, body, expected):
    call_id = _place(api).json()["id"]
    _live(api, call_id)
    r = api.http.post(f"{api.url}/calls/{call_id}/{path}", **({"json": body} if body is not None else {}))
    assert r.status_code == 202, r.text
    assert r.json() == {"id": call_id, "command": path}
    (raw,) = api.client.r.lrange(api.client.keys.inbox("api-test-worker"), 0, -1)
    msg = json.loads(raw)
    assert msg["call_id"] == call_id and expected.items() <= msg["command"].items()


def test_commands_404_for_unknown_or_ended_calls_409_when_the_worker_is_gone(api):
    assert api.http.post(f"{api.url}/calls/{uuid.uuid4()}/say", json={"text": "hi"}).status_code == 404
    ended = _place(api).json()["id"]
    api.http.delete(f"{api.url}/calls/{ended}")
    assert api.http.post(f"{api.url}/calls/{ended}/hangup").status_code == 404
    orphan = _place(api).json()["id"]
    _live(api, orphan, worker="dead-worker", alive=False)
    r = api.http.post(f"{api.url}/calls/{orphan}/say", json={"text": "hi"})
    assert r.status_code == 409 and "dead-worker" in r.json()["error"]["message"]
    queued = _place(api).json()["id"]
    assert api.http.post(f"{api.url}/calls/{queued}/say", json={"text": "hi"}).status_code == 409


@pytest.mark.parametrize("path,body,field", [("say", {"text": ""}, "text"), ("say", {}, "text"),
                                             ("hangup", {"cause": "bad cause"}, "cause"),
                                             ("transfer", {"destination": "sip:x@y"}, "destination"),
                                             ("say", {"text": "hi", "loud": True}, "loud")])
def test_bad_commands_are_422_naming_the_field(api, path, body, field):
    call_id = _place(api).json()["id"]
    _live(api, call_id)
    r = api.http.post(f"{api.url}/calls/{call_id}/{path}", json=body)
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["error"]["fields"]] == [field]
    assert api.client.r.llen(api.client.keys.inbox("api-test-worker")) == 0
