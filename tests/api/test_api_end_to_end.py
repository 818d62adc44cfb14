"""POST /calls to a voice worker on the emulator, followed over HTTP until the call has ended."""
from tests.jobs.conftest import procs  # noqa: F401 - fixture: RQ workers, which hand queued calls over
from voiceagent.records.models import CallRecord


def test_a_call_placed_over_http_is_dialed_answered_and_recorded(start_api, make_emulator, make_worker,
                                                                  procs):  # noqa: F811
    procs.rq_worker("--without-scheduler")
    emu = make_emulator(speed=4.0)
    emu.script_destination("+15550131", outcome="answer", ring_seconds=0.3)
    worker = make_worker([emu], originate_gateway="carrier1")
    api = start_api()
    r = api.http.post(api.url + "/calls", json={"to": "+15550131", "message": "Hello from the API"},
                      headers={"Idempotency-Key": "e2e-1"})
    assert r.status_code == 202, r.text
    call_id = r.json()["id"]
    api.client.wait(call_id, timeout=40)  # wakes on the event stream; the API is what we check
    body = api.http.get(f"{api.url}/calls/{call_id}").json()
    rec = CallRecord.model_validate(body)
    assert rec.state == "ended" and rec.outcome.value == "answered", body
    assert rec.worker == worker.worker_id and rec.duration > 0
    assert rec.turns and rec.turns[0].kind == "greeting" and rec.turns[0].heard  # the worker's greeting dialog
    states = [h.state for h in rec.history]
    assert states[:2] == ["queued", "requested"]
    assert states.index("dialing") < states.index("answered") < states.index("ended")
    assert [ch.uuid for ch in emu.all_channels() if ch.destination == "+15550131"] == [call_id]
    again = api.http.post(api.url + "/calls", json={"to": "+15550131", "message": "Hello from the API"},
                          headers={"Idempotency-Key": "e2e-1"})
    assert again.json()["id"] == call_id and again.json()["state"] == "ended"
    assert api.waiting() == 0  # nothing queued again: nobody can dial it twice
    assert [ch.uuid for ch in emu.all_channels() if ch.destination == "+15550131"] == [call_id]
    health = api.http.get(api.url + "/health").json()
    assert [w["id"] for w in health["workers"]] == [worker.worker_id] and health["status"] == "ok"
