"""Restart safety on a persistent Redis of the test's own: the jobs worker killed with -9 while a
run falls due, then Redis itself killed with -9: every run fires, none is lost, none dials twice."""
import time

import pytest

from tests.fork_helpers import wait_until
from voiceagent.config import load_settings
from voiceagent.records.models import Outcome
from voiceagent.schedules import runner
from voiceagent.schedules.models import ScheduleSpec
from voiceagent.schedules.service import Schedules

from tests.jobs_procs import JobsWorker, PersistentRedis

NUMBERS = ("+15550401", "+15550402", "+15550403")


@pytest.fixture
def private_redis(tmp_path):
    (tmp_path / "redis").mkdir()
    server = PersistentRedis(tmp_path / "redis")
    server.start()
    yield server
    server.kill9()


def test_kill_9_of_the_jobs_worker_and_of_redis_loses_no_run_and_dials_none_twice(
        private_redis, make_emulator, make_worker, redis_prefix, tmp_path):
    emu = make_emulator(speed=8.0)
    for n in NUMBERS:
        emu.script_destination(n, outcome="answer", ring_seconds=0.1)
    make_worker([emu], originate_gateway="carrier1", redis_url=private_redis.url)
    settings = load_settings(redis_prefix=redis_prefix, redis_url=private_redis.url)
    sv = Schedules.from_settings(settings)
    now = time.time()
    scheds = [sv.create(ScheduleSpec.model_validate({"name": f"r{i}", "when": {"in_seconds": secs},
                                                     "call": {"to": n, "message": "Hello"}}), now)
              for i, (n, secs) in enumerate(zip(NUMBERS, (2, 7, 12)))]
    a, b, c = scheds
    worker = JobsWorker(redis_prefix, tmp_path, redis_url=private_redis.url)
    worker.start()
    try:
        def ran(s):
            return lambda: sv.store.run(s.id, s.next_due) is not None

        assert wait_until(ran(a), timeout=30), worker.logs()
        # the worker and its scheduler die; b falls due while nothing runs
        worker.kill9()
        assert wait_until(lambda: time.time() > b.next_due + 1, timeout=30)
        assert sv.store.run(b.id, b.next_due) is None
        worker.start()  # its start-up frees the dead scheduler's locks and reconciles
        assert wait_until(ran(b), timeout=30), worker.logs()
        for s in (a, b):  # both calls over before Redis dies (a call live in an outage is the voice worker's test)
            assert sv.dispatcher.client.wait(sv.store.run(s.id, s.next_due).call_id, timeout=40).ended
        # Redis dies (-9) and comes back from its append-only file; the worker is restarted too
        private_redis.kill9()
        worker.kill9()
        private_redis.start()
        worker.start()
        assert wait_until(ran(c), timeout=40), worker.logs()
        runs = [sv.store.run(s.id, s.next_due) for s in scheds]
        assert [r.status for r in runs] == ["placed"] * 3, runs
        for r in runs:
            assert sv.dispatcher.client.wait(r.call_id, timeout=40).outcome == Outcome.ANSWERED
        # every run dialed exactly once, and every schedule is finished
        assert [[ch.uuid for ch in emu.all_channels() if ch.destination == n] for n in NUMBERS] == \
            [[r.call_id] for r in runs]
        assert [sv.store.get(s.id).state for s in scheds] == ["finished"] * 3
        # the jobs again, and the reconciler: still nothing dialed twice
        assert [runner.run(sv, s.id, s.next_due, time.time()) for s in scheds] == ["done"] * 3
        assert runner.reconcile(sv, time.time()) == []
        assert len(emu.all_channels()) == 3
    finally:
        worker.stop()
