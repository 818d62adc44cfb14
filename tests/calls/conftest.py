"""Fixtures for call-lifecycle tests: a FreeSWITCH emulator, voice workers, a Redis prefix."""
import os
import uuid

import pytest
import redis

from voiceagent.calls.worker import VoiceWorker
from voiceagent.config import load_settings
from voiceagent.emulator import FreeSwitchEmulator

ESL_PASSWORD = "test-secret"


@pytest.fixture
def redis_prefix():
    """A key prefix of the test's own; at its end every key of it goes, and RQ's keys of its queues and jobs."""
    prefix = f"vatest-{uuid.uuid4().hex[:8]}"
    yield prefix
    r = redis.Redis()
    keys = rq_keys(r, prefix) + list(r.scan_iter(f"{prefix}:*"))
    for k in list(r.smembers("rq:queues")):
        if k.decode().startswith(f"rq:queue:{prefix}-"):
            r.srem("rq:queues", k)
    if keys:
        r.delete(*keys)


def rq_keys(r, prefix):
    """RQ's own keys (``rq:...``) of a prefix: its queues and their registries, the jobs named after the prefix
    (schedule runs, webhook deliveries) and the dial jobs of its call records (``dial-<call id>``)."""
    from voiceagent.jobs.dispatch import dial_job_id

    ids = [k.decode().rsplit(":", 1)[1] for k in r.scan_iter(f"{prefix}:record:*")]
    dial = [f"rq:{kind}:{dial_job_id(i)}" for i in ids for kind in ("job", "results", "executions")]
    return dial + list(r.scan_iter(f"rq:*{prefix}-*"))


@pytest.fixture
def make_emulator(tmp_path):
    emus = []

    def make(switchname="fs1", speed=4.0, **kw):
        temp = tmp_path / f"fs-{switchname}-temp"
        temp.mkdir(exist_ok=True)
        emu = FreeSwitchEmulator(host="127.0.0.1", port=0, password=ESL_PASSWORD, switchname=switchname,
                                 speed=speed, temp_dir=str(temp), **kw)
        emu.start()
        emus.append(emu)
        return emu

    yield make
    for emu in emus:
        emu.stop()


@pytest.fixture
def make_worker(tmp_path, redis_prefix):
    workers = []

    def make(emulators, *, dialog_factory=None, **overrides):
        nodes = ",".join(f"{e.switchname}=127.0.0.1:{e.port}" for e in emulators)
        wid = f"w{len(workers) + 1}-{uuid.uuid4().hex[:6]}"
        overrides.setdefault("playback_dir", tmp_path / f"playback-{wid}")
        # the emulator (a whole FreeSWITCH) shares the worker's event loop here: its lag is not the worker's
        overrides.setdefault("admission_max_loop_lag_ms", 0)
        settings = load_settings(esl_nodes=nodes, esl_password=ESL_PASSWORD, fork_host="127.0.0.1", fork_port=0,
                                 redis_prefix=redis_prefix, worker_id=wid, **overrides)
        w = VoiceWorker(settings, dialog_factory=dialog_factory)
        w.start()
        workers.append(w)
        for e in emulators:
            set_fork_url(e, w.fork_url_base)
        for node in w.nodes.values():
            assert node.esl.wait_connected(10), f"worker never connected to {node.name}"
        return w

    yield make
    for w in workers:
        if not w.stopped.is_set():
            w.stop()


def set_fork_url(emu, url):
    """Point the emulator's dialplan at a worker: edit the preprocessor variable, then reloadxml."""
    emu.global_vars["voiceagent_fork_url"] = url
    emu.dialplan.pre["voiceagent_fork_url"] = url
    emu.dialplan.load()


def temp_files(path):
    if not os.path.isdir(path):
        return []
    return [f for f in os.listdir(path)]
