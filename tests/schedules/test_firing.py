"""Schedules fire through the real parts: ``voiceagent jobs worker`` (RQ + its scheduler) as a
process, the dispatcher, a voice worker dialing the FreeSWITCH emulator; and the run job called
directly for successive due times of a recurring series."""
import time

import pytest
import redis

from tests.fork_helpers import wait_until
from voiceagent.config import load_settings
from voiceagent.records.client import CallClient
from voiceagent.records.models import Outcome
from voiceagent.schedules import runner
from voiceagent.schedules.models import ScheduleSpec
from voiceagent.schedules.service import Schedules

from tests.jobs_procs import jobs_worker  # noqa: F401 - fixture


def dialed(emu, number):
    return [ch.uuid for ch in emu.all_channels() if ch.destination == number]


def test_a_schedule_a_few_seconds_ahead_fires_once_and_dials_through_the_emulator(start_api, make_emulator,
                                                                                   make_worker, jobs_worker):
    emu = make_emulator(speed=4.0)
    emu.script_destination("+15550301", outcome="answer", ring_seconds=0.2)
    make_worker([emu], originate_gateway="carrier1")
    api = start_api()
    worker = jobs_worker()
    r = api.http.post(api.url + "/schedules", json={"name": "soon", "when": {"in_seconds": 2},
                                                    "call": {"to": "+15550301", "message": "Hello"}})
    assert r.status_code == 201, r.text
    sid = r.json()["schedule"]["id"]
    url = f"{api.url}/schedules/{sid}"
    assert wait_until(lambda: api.http.get(url).json()["runs"], timeout=30), worker.logs()
    run = api.http.get(url).json()["runs"][0]
    assert run["status"] == "placed" and run["call_id"], run
    rec = CallClient(redis.Redis(), api.prefix).wait(run["call_id"], timeout=40)
    assert rec.outcome == Outcome.ANSWERED and rec.request.idempotency_key == f"schedule-{sid}-{run['due']}"
    view = api.http.get(url).json()
    assert view["schedule"]["state"] == "finished" and view["next_runs"] == []
    assert view["runs"][0]["outcome"] == "answered" and view["runs"][0]["call_state"] == "ended"
    assert dialed(emu, "+15550301") == [run["call_id"]]
    assert run["fired"] >= run["due"]


def test_a_recurring_series_goes_on_after_a_failed_run_and_a_repeated_job_dials_nothing(make_emulator, make_worker,
                                                                                         redis_prefix, jobs_worker):
    emu = make_emulator(speed=20.0)
    jobs_worker()  # the runs are called directly here; the calls they place go through the queue
    emu.script_destination("+15550302", outcome="busy")
    make_worker([emu], originate_gateway="carrier1")
    sv = Schedules.from_settings(load_settings(redis_prefix=redis_prefix))
    spec = ScheduleSpec.model_validate({"name": "every 5 min", "when": {"cron": "*/5 * * * *"}, "timezone": "UTC",
                                        "call": {"to": "+15550302", "message": "Hi", "ring_timeout": 5}})
    now = time.time()
    sched = sv.create(spec, now)
    first = sched.next_due
    assert sv.armer.waiting(sched.id, first)
    # the job for the first due time, run at that time (a fixed clock): busy
    assert runner.run(sv, sched.id, first, first + 1) == "placed"
    busy = sv.store.run(sched.id, first)
    assert sv.dispatcher.client.wait(busy.call_id, timeout=30).outcome == Outcome.BUSY
    after = sv.store.get(sched.id)
    assert after.state == "active" and after.next_due == first + 300 and after.runs == 1
    assert sv.armer.waiting(sched.id, after.next_due)  # the series goes on: its next run is armed
    # the same job again (a retry, a duplicate): nothing is dialed
    assert runner.run(sv, sched.id, first, first + 2) == "done"
    emu.script_destination("+15550302", outcome="answer", ring_seconds=0.1)
    assert runner.run(sv, sched.id, first + 300, first + 301) == "placed"
    second = sv.store.run(sched.id, first + 300)
    assert sv.dispatcher.client.wait(second.call_id, timeout=30).outcome == Outcome.ANSWERED
    history = sv.history(sched.id, 10)
    assert [(h.due, h.outcome) for h in history] == [(first + 300, Outcome.ANSWERED), (first, Outcome.BUSY)]
    assert sorted(dialed(emu, "+15550302")) == sorted([busy.call_id, second.call_id])
    # a job for a due time that is not the next one (stale after an edit) places nothing
    assert runner.run(sv, sched.id, first + 900, first + 901) == "stale"
    # a run found later than the grace is recorded as missed and skipped; the series goes on
    late = first + 600
    assert runner.run(sv, sched.id, late, late + sv.grace + 5) == "missed"
    assert sv.store.get(sched.id).next_due > late and len(dialed(emu, "+15550302")) == 2


def test_max_runs_ends_a_series_and_a_deleted_schedule_places_nothing(make_emulator, make_worker, redis_prefix,
                                                                      jobs_worker):
    emu = make_emulator(speed=20.0)
    jobs_worker()
    emu.script_destination("+15550303", outcome="answer", ring_seconds=0.1)
    make_worker([emu], originate_gateway="carrier1")
    sv = Schedules.from_settings(load_settings(redis_prefix=redis_prefix))
    spec = ScheduleSpec.model_validate({"name": "twice", "when": {"every": "daily", "time": "07:00"},
                                        "timezone": "Europe/Berlin", "max_runs": 1,
                                        "call": {"to": "+15550303", "message": "Hi"}})
    sched = sv.create(spec, time.time())
    due = sched.next_due
    assert runner.run(sv, sched.id, due, due + 1) == "placed"
    sv.dispatcher.client.wait(sv.store.run(sched.id, due).call_id, timeout=30)
    assert sv.store.get(sched.id).state == "finished" and not sv.armer.waiting(sched.id, due + 86400)
    other = sv.create(spec, time.time())
    assert sv.delete(other.id) and runner.run(sv, other.id, other.next_due, other.next_due + 1) == "gone"
    assert not sv.armer.waiting(other.id, other.next_due)
    assert len(dialed(emu, "+15550303")) == 1
