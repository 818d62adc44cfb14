"""A bounded, loopback-only flood of the fork server while real calls come in: 1,000 idle and
200 garbage connections from other addresses (its own process, tests/fork_flood.py), 10 real
emulated calls.  The calls must all be answered and heard, the worker's descriptors must come
back to where they were, and the flood must not turn into a flood of log lines."""
import logging
import os
import time

import gevent

from tests.fork_helpers import Flood

from .test_lifecycle import wait_until

FORK_USER, FORK_PASSWORD = "voiceagent", "CHANGE-ME"  # the emulator's vars_voiceagent.xml
IDLE = ("silent:400:127.0.0.2", "silent:300:127.0.0.3", "partial:150:127.0.0.4", "upgraded:150:127.0.0.5")
GARBAGE = ("garbage:60:127.0.0.6", "badhttp:40:127.0.0.6", "badauth:60:127.0.0.7", "fakefork:40:127.0.0.7")


def _redis_socket_inodes() -> set:
    """Inodes of TCP sockets to Redis (port 6379): redis-py's pool grows with concurrency, not with forks."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[2].endswith(":18EB"):
                out.add(cols[9])
    return out


def open_fds() -> int:
    """This process's descriptors, not counting its Redis connection pool."""
    redis_inodes = _redis_socket_inodes()
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # listdir's own descriptor
        if not (target.startswith("socket:[") and target[8:-1] in redis_inodes):
            n += 1
    return n


def test_real_calls_get_through_a_flood_of_idle_and_garbage_connections(make_emulator, make_worker, caplog):
    emu = make_emulator(speed=4.0)
    w = make_worker([emu], fork_auth_user=FORK_USER, fork_auth_password=FORK_PASSWORD)
    logging.getLogger("websockets").setLevel(logging.WARNING)  # as setup_logging does in production
    caplog.set_level(logging.INFO)
    base = open_fds()
    t0 = time.monotonic()
    flood = Flood(w.fork_server.port, *IDLE, *GARBAGE, "--auth", f"{FORK_USER}:{FORK_PASSWORD}")
    peak = {"fds": 0, "sockets": 0}

    def sample():
        while True:
            peak["fds"] = max(peak["fds"], open_fds())
            peak["sockets"] = max(peak["sockets"], w.fork_server.guard.total)
            gevent.sleep(0.1)

    sampler = gevent.spawn(sample)
    try:
        calls = [emu.place_call(destination="+15551230000", caller=f"+1555000{i:04d}") for i in range(10)]
        for i, ch in enumerate(calls):
            assert ch.wait_answered(20), f"call {i} not answered during the flood ({ch.hangup_cause})"
        for i, ch in enumerate(calls):
            assert ch.wait_hangup(30), f"call {i} never finished"
            assert [s["status"] for s in ch.segments] == ["done"], f"call {i} did not hear its greeting"
            heard, rate = ch.heard_audio()
            assert len(heard) / 2 / rate > 1.0
        assert w.fork_server.serving
    finally:
        flood.close()
        sampler.kill()
    ok = wait_until(lambda: not w.sessions and open_fds() <= base + 3, 20)
    assert ok, \
        f"descriptors {open_fds()} vs {base} before the flood; sessions {list(w.sessions)}"
    took = time.monotonic() - t0
    worker_lines = [r for r in caplog.records
                    if r.name.startswith("voiceagent.") and not r.name.startswith("voiceagent.emulator")]
    warnings = [r for r in worker_lines if r.levelno >= logging.WARNING]
    print(f"\nfork flood: {took:.1f}s, peak {peak['fds']} descriptors (baseline {base}), peak "
          f"{peak['sockets']} fork sockets, {w.fork_server.guard.dropped} dropped, {len(worker_lines)} worker log "
          f"lines ({len(warnings)} warnings), health {w.fork_server.health()}")
    assert len(worker_lines) < 200, [r.getMessage() for r in worker_lines[:50]]
    assert len(warnings) < 40, [r.getMessage() for r in warnings]
