"""SIGTERM drains a real voice worker process: no new calls, live ones finish, then it exits."""
import os
import signal
import socket
import subprocess
import sys
import uuid

import gevent
import redis

from .conftest import ESL_PASSWORD, set_fork_url


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_drains_live_calls_then_exits(make_emulator, redis_prefix, tmp_path):
    emu = make_emulator(speed=1.0)
    port = _free_port()
    wid = f"drain-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, ESL_NODES=f"fs1=127.0.0.1:{emu.port}", ESL_PASSWORD=ESL_PASSWORD,
               FORK_HOST="127.0.0.1", FORK_PORT=str(port), REDIS_PREFIX=redis_prefix, WORKER_ID=wid,
               DIALOG="greeting", DRAIN_SECONDS="30", PLAYBACK_DIR=str(tmp_path / "pb"), LOG_FORMAT="json")
    set_fork_url(emu, f"ws://127.0.0.1:{port}")
    log = open(tmp_path / "worker.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "voiceagent.cli", "voice"], env=env, stdout=log, stderr=log)
    try:
        r = redis.Redis()
        ready = False
        with gevent.Timeout(30, False):
            # the worker's heartbeat appears once it is serving
            while not r.exists(f"{redis_prefix}:worker:{wid}"):
                gevent.sleep(0.05)
            ready = True
        assert ready, (tmp_path / "worker.log").read_text()
        first = emu.place_call(destination="+15551230000", caller="+15551230001")
        assert first.wait_answered(15), (tmp_path / "worker.log").read_text()
        proc.send_signal(signal.SIGTERM)
        # wait until the worker says it is draining, then try a new call
        draining = False
        with gevent.Timeout(10, False):
            while r.hget(f"{redis_prefix}:worker:{wid}", "draining") != b"1":
                gevent.sleep(0.05)
            draining = True
        assert draining, "the worker did not announce that it is draining"
        second = emu.place_call(destination="+15551230000", caller="+15551230002")
        assert second.wait_hangup(10)
        assert not second.answered and second.hangup_cause == "USER_BUSY"
        # the live call is not cut: its greeting plays to the end, then the agent hangs up
        assert first.wait_hangup(20)
        assert [s["status"] for s in first.segments] == ["done"]
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
