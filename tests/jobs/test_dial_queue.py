"""Queued calls end to end: Dispatcher -> RQ job (a real ``voiceagent jobs worker``) -> a call slot ->
the voice workers -> the emulator; the cluster-wide limit; a cancel while queued."""

import gevent
from rq.job import Job

from tests.event_helpers import event_types
from tests.fork_helpers import wait_until
from voiceagent.jobs.dispatch import dial_job_id
from voiceagent.records.models import Outcome


def test_a_queued_call_is_handed_to_a_voice_worker_dialed_answered_and_frees_its_slot(
        make_emulator, make_worker, procs, queue):
    emu = make_emulator(speed=4.0)
    emu.script_destination("+15550301", outcome="answer", ring_seconds=0.2)
    w = make_worker([emu], originate_gateway="carrier1")
    q = queue(limit=2)
    procs.rq_worker(CALL_CONCURRENCY_LIMIT=2)
    call_id = q.dispatcher.submit({"to": "+15550301", "message": "Hello from the queue"}, priority="high")
    rec = q.client.wait(call_id, timeout=40)
    assert rec.outcome == Outcome.ANSWERED and rec.worker == w.worker_id, rec
    states = [h.state for h in rec.history]
    assert states[:3] == ["queued", "requested", "claimed"], states
    assert states.index("dialing") < states.index("answered") < states.index("ended")
    assert rec.priority == "high" and rec.attempt == 1 and rec.duration > 0
    assert rec.turns and rec.turns[0].kind == "greeting" and rec.turns[0].heard
    assert [ch.uuid for ch in emu.all_channels() if ch.destination == "+15550301"] == [call_id]
    types = event_types(q.client, call_id)
    assert types[:2] == ["call.queued", "call.requested"] and types[-1] == "call.ended", types
    assert q.slots.holders() == [] and q.dispatcher.depth() == {"high": 0, "bulk": 0}
    job = Job.fetch(dial_job_id(call_id), connection=q.r)
    assert job.return_value() == "requested"


def test_a_canceled_queued_call_ends_canceled_at_once_and_its_job_dials_nothing(make_emulator, make_worker,
                                                                                 procs, queue, start_api):
    emu = make_emulator(speed=20.0)
    emu.script_destination("+15550302", outcome="answer")
    make_worker([emu], originate_gateway="carrier1")
    api = start_api()
    r = api.http.post(api.url + "/calls", json={"to": "+15550302"})
    assert r.status_code == 202 and r.json()["state"] == "queued", r.text
    call_id = r.json()["id"]
    assert api.http.delete(f"{api.url}/calls/{call_id}").status_code == 202
    rec = api.client.get(call_id)
    assert rec.ended and rec.outcome == Outcome.CANCELED and rec.reason == "canceled while queued"
    assert api.http.get(api.url + "/health").json()["queued"] == {"high": 0, "bulk": 0}
    procs.rq_worker()  # only now: the job runs after the cancel
    q = queue()
    job = Job.fetch(dial_job_id(call_id), connection=q.r)
    assert wait_until(lambda: job.get_status(refresh=True) == "finished", 20), job.get_status()
    assert job.return_value() == "not dialed: ended"
    assert [ch for ch in emu.all_channels() if ch.destination == "+15550302"] == []
    assert q.client.get(call_id).outcome == Outcome.CANCELED and q.slots.holders() == []


def test_twenty_queued_calls_three_job_workers_never_more_than_the_limit_live(make_emulator, make_worker,
                                                                              procs, queue):
    emu = make_emulator(speed=8.0)
    numbers = [f"+1555031{i:02d}" for i in range(20)]
    for n in numbers:
        emu.script_destination(n, outcome="answer", ring_seconds=0.2)
    workers = [make_worker([emu], originate_gateway="carrier1", max_calls=5) for _ in range(2)]
    q = queue(limit=3)
    for _ in range(3):
        procs.rq_worker("--without-scheduler", CALL_CONCURRENCY_LIMIT=3)
    peak = {"channels": 0, "slots": 0}
    stop = gevent.event.Event()

    def sample_on_events():  # every call event is a moment the count may change
        last = q.client.stream.last_id()
        while not stop.is_set():
            last, events = q.client.stream.tail(last, block_ms=200)
            if events:
                peak["channels"] = max(peak["channels"], len(emu.channels))
                peak["slots"] = max(peak["slots"], q.slots.count())

    g = gevent.spawn(sample_on_events)
    ids = [q.dispatcher.submit({"to": n, "deadline_seconds": 300}, priority="bulk") for n in numbers]
    try:
        recs = [q.client.wait(i, timeout=180) for i in ids]
    finally:
        stop.set()
        g.join(2)
    assert [r.outcome for r in recs] == [Outcome.ANSWERED] * 20
    assert peak["slots"] <= 3 and peak["channels"] <= 3, peak
    assert {r.worker for r in recs} <= {w.worker_id for w in workers}
    # from the records alone: between hand-over (requested) and end, never more than 3 calls at once
    spans = [(next(h.at for h in r.history if h.state == "requested"), r.ended_at) for r in recs]
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1]))
    live = worst = 0
    for _, d in edges:
        live += d
        worst = max(worst, live)
    assert worst <= 3, worst
    assert q.slots.holders() == []
