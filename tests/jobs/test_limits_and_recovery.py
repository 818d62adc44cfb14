"""The queue's limits and its recovery: a full queue is a 429, an Idempotency-Key dials once even when
the RQ worker is killed after it took the job, a crashed call's slot comes back after its lease;
and rq-dashboard serves this Redis's queues."""
import os
import signal
import socket

import requests
from rq.job import Job

from tests.fork_helpers import wait_until
from voiceagent.jobs.dial import DialJob
from voiceagent.jobs.dispatch import dial_job_id
from voiceagent.records.models import Outcome


def test_a_full_queue_is_a_429_naming_the_limit_and_the_same_key_still_gets_its_call(start_api):
    api = start_api(queue_max_depth=2)
    ids = [api.http.post(api.url + "/calls", json={"to": "+15550501"}, headers={"Idempotency-Key": f"k{i}"})
           for i in range(2)]
    assert [r.status_code for r in ids] == [202, 202]
    r = api.http.post(api.url + "/calls", json={"to": "+15550501"})
    assert r.status_code == 429 and r.headers["Retry-After"].isdigit(), r.text
    err = r.json()["error"]
    assert err["code"] == "too_many_requests" and "QUEUE_MAX_DEPTH=2" in err["message"] and "high" in err["message"]
    again = api.http.post(api.url + "/calls", json={"to": "+15550501"}, headers={"Idempotency-Key": "k0"})
    assert again.status_code == 202 and again.json()["id"] == ids[0].json()["id"]
    assert api.http.get(api.url + "/health").json()["queued"] == {"high": 2, "bulk": 0}
    assert len(api.client.list(limit=10)) == 2  # the refused call left no record


def test_a_bad_retry_policy_is_a_422_naming_the_field(start_api):
    api = start_api()
    for policy, field in [({"busy": {"attempts": 0}}, "retry.busy.attempts"),
                          ({"no_answer": {"attempts": 2, "delay_seconds": 10 ** 6}}, "retry.no_answer.delay_seconds"),
                          ({"answered": {"attempts": 1}}, "retry.answered")]:
        r = api.http.post(api.url + "/calls", json={"to": "+15550502", "retry": policy})
        assert r.status_code == 422, r.text
        assert field in [f["field"] for f in r.json()["error"]["fields"]], r.json()


def test_one_idempotency_key_dials_once_even_when_the_job_worker_is_killed_after_taking_the_job(
        make_emulator, make_worker, procs, queue, start_api):
    emu = make_emulator(speed=8.0)
    number = "+15550503"
    emu.script_destination(number, outcome="answer", ring_seconds=0.2)
    make_worker([emu], originate_gateway="carrier1")
    api = start_api()
    q = queue(limit=1)
    assert q.slots.take("a-long-call", lease_seconds=600)  # the cluster is full: the job waits for the slot
    ids = {api.http.post(api.url + "/calls", json={"to": number}, headers={"Idempotency-Key": "visit-9"})
           .json()["id"] for _ in range(2)}
    assert len(ids) == 1
    call_id = ids.pop()
    doomed = procs.rq_worker("--without-scheduler", CALL_CONCURRENCY_LIMIT=1)
    job = Job.fetch(dial_job_id(call_id), connection=q.r)
    assert wait_until(lambda: job.get_status(refresh=True) == "started", 20)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(10)
    procs.rq_worker("--without-scheduler", CALL_CONCURRENCY_LIMIT=1)
    # the job's lease lapses (3 heartbeats), the survivor's maintenance retries it; it waits for the slot
    def retried():
        job.refresh()
        return job.get_status(refresh=False) == "started" and job.retries_left == 2
    assert wait_until(retried, 30), (job.get_status(), job.retries_left)
    assert q.client.get(call_id).state == "queued"
    q.slots.release("a-long-call")
    rec = q.client.wait(call_id, timeout=40)
    assert rec.outcome == Outcome.ANSWERED, rec
    again = api.http.post(api.url + "/calls", json={"to": number}, headers={"Idempotency-Key": "visit-9"})
    assert again.json()["id"] == call_id
    assert wait_until(lambda: job.get_status(refresh=True) == "finished", 20)
    assert [ch.uuid for ch in emu.all_channels() if ch.destination == number] == [call_id]


def test_a_dial_job_run_again_after_the_hand_over_does_nothing(queue):
    q = queue(limit=1)
    call_id = q.dispatcher.submit({"to": "+15550504"})
    job = DialJob(q.client, q.slots)
    assert job.run(call_id) == "requested"
    assert q.client.get(call_id).state == "requested" and q.client.records.pending_count() == 1
    assert job.run(call_id) == "already handed over (requested)"
    assert q.client.records.pending_count() == 1 and q.slots.holders() == [call_id]
    q.client.cancel(call_id)  # any end frees the slot, in the transaction that ends the call
    assert q.slots.holders() == []


def test_a_slot_held_by_a_crashed_call_is_free_again_after_its_lease(make_emulator, make_worker, procs, queue):
    emu = make_emulator(speed=8.0)
    emu.script_destination("+15550505", outcome="answer", ring_seconds=0.2)
    make_worker([emu], originate_gateway="carrier1")
    q = queue(limit=1)
    assert q.slots.take("crashed-call", lease_seconds=2)  # its process died: nobody will end it
    assert not q.slots.take("another", lease_seconds=60)
    procs.rq_worker("--without-scheduler", CALL_CONCURRENCY_LIMIT=1)
    call_id = q.dispatcher.submit({"to": "+15550505"})
    rec = q.client.wait(call_id, timeout=40)
    assert rec.outcome == Outcome.ANSWERED, rec
    assert "crashed-call" not in q.slots.holders()


def test_a_job_without_a_slot_before_its_deadline_fails_its_call_saying_why(procs, queue):
    q = queue(limit=1)
    assert q.slots.take("a-long-call", lease_seconds=600)
    procs.rq_worker("--without-scheduler", CALL_CONCURRENCY_LIMIT=1)
    call_id = q.dispatcher.submit({"to": "+15550506", "deadline_seconds": 2})
    rec = q.client.wait(call_id, timeout=30)
    assert rec.outcome == Outcome.FAILED and "CALL_CONCURRENCY_LIMIT=1" in rec.reason, rec.reason
    assert q.slots.holders() == ["a-long-call"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rq_dashboard_serves_the_queues_and_workers_of_this_redis(procs, queue):
    q = queue()
    q.dispatcher.submit({"to": "+15550507"}, priority="bulk")
    port = _free_port()
    procs.start("jobs", "dashboard", DASHBOARD_PORT=port)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return requests.get(url + "/", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False
    assert wait_until(up, 30), "rq-dashboard never served"
    assert "RQ" in requests.get(url + "/0/view/queues", timeout=5).text
    queues = {x["name"]: x for x in requests.get(url + "/0/data/queues.json", timeout=5).json()["queues"]}
    assert queues[f"{q.prefix}-bulk"]["count"] == 1, queues.keys()
    procs.rq_worker("--without-scheduler", "--queue", "high")  # serves high only: the bulk job stays queued
    workers = requests.get(url + "/0/data/workers.json", timeout=5).json()["workers"]
    assert any(f"{q.prefix}-high" in w["queues"] for w in workers), workers
