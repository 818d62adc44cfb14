"""Fixtures for the call-queue tests: RQ workers (``voiceagent jobs worker``) and the follower as real
subprocesses on the test's Redis prefix; voice workers and the emulator in-process (tests/calls)."""
import os
import signal
import subprocess
import sys
import types

import pytest
import redis

from tests.api.conftest import start_api  # noqa: F401 - fixture
from tests.calls.conftest import make_emulator, make_worker, redis_prefix  # noqa: F401 - fixtures
from tests.fork_helpers import wait_until
from voiceagent.jobs.dispatch import Dispatcher
from voiceagent.jobs.queues import Queues, queue_name
from voiceagent.jobs.slots import CallSlots
from voiceagent.records.client import CallClient

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: fast leases and maintenance, so an abandoned job is retried within seconds
FAST = {"JOBS_HEARTBEAT_SECONDS": "1", "JOBS_MAINTENANCE_SECONDS": "1", "FOLLOW_RETRY_SECONDS": "0.5"}


def cli_env(prefix, **env):
    out = dict(os.environ, REDIS_PREFIX=prefix, PYTHONPATH=ROOT, **FAST)
    out.update({k: str(v) for k, v in env.items()})
    return out


class Procs:
    """Subprocesses of one test, each in its own session (RQ's scheduler is a child of its worker)."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.procs = []

    def start(self, *args, **env):
        p = subprocess.Popen([sys.executable, "-m", "voiceagent.cli", *args], env=cli_env(self.prefix, **env),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def rq_worker(self, *extra, **env):
        """A ``voiceagent jobs worker`` (with RQ's scheduler unless '--without-scheduler'), once it listens."""
        p = self.start("jobs", "worker", *extra, **env)
        r = redis.Redis()
        assert wait_until(lambda: p.poll() is not None or _listening(r, self.prefix, p.pid), 30), "worker never up"
        assert p.poll() is None, p.stderr.read().decode()[-2000:]
        return p

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
            try:
                os.killpg(p.pid, signal.SIGKILL)  # what is left of the group (a scheduler child)
            except (ProcessLookupError, PermissionError):
                pass
            if p.stderr:
                p.stderr.close()


def _listening(r, prefix, pid):
    """A worker of ours has registered with RQ (its hash names our queues and its pid)."""
    for key in r.smembers("rq:workers"):
        info = r.hgetall(key)
        if info.get(b"pid") == str(pid).encode() and queue_name(prefix, "high").encode() in info.get(b"queues", b""):
            return True
    return False


@pytest.fixture
def procs(redis_prefix):  # noqa: F811
    ps = Procs(redis_prefix)
    yield ps
    ps.stop()


@pytest.fixture
def queue(redis_prefix):  # noqa: F811
    """A dispatcher, call client and slots on the test prefix (CALL_CONCURRENCY_LIMIT given per test)."""
    client = CallClient(redis.Redis(), redis_prefix)

    def make(limit=3, max_depth=1000, dial_retries=3):
        d = Dispatcher(client, Queues(client.r, redis_prefix), max_depth=max_depth, dial_retries=dial_retries)
        return types.SimpleNamespace(dispatcher=d, client=client, slots=CallSlots(client.r, client.keys, limit),
                                     prefix=redis_prefix, r=client.r)
    return make
