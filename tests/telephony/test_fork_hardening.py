"""The fork server against hostile peers: descriptors running out, socket caps, forks that send
nothing or malformed JSON, log floods, a socket closed under a connection, stop during handshakes."""
from __future__ import annotations

import base64
import json
import logging
import os
import socket
import sys
import time

import gevent
import pytest
from gevent.queue import Queue
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.fork_helpers import run_isolated, sees_eof, silent_from, wait_until
from voiceagent.observability.log_throttle import LogThrottle
from voiceagent.telephony import forkwire
from voiceagent.telephony.fork_guard import ConnectionGuard
from voiceagent.telephony.fork_server import Audio, ForkConnection, ForkServer, Metadata
from voiceagent.telephony.forkwire import SUBPROTOCOL

UUID = "8eb532dd-ba0a-4941-aab3-a85a2ae06271"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIO = os.path.join(ROOT, "tests", "fork_emfile_scenario.py")


class Recorder:
    def __init__(self, establish=False):
        self.messages: Queue = Queue()
        self.establish = establish

    def __call__(self, conn):
        if self.establish:
            conn.mark_established()
        for msg in conn.messages():
            self.messages.put((conn, msg))


@pytest.fixture
def make_server():
    servers = []

    def make(handler=None, **kw):
        srv = ForkServer("127.0.0.1", 0, handler or Recorder(), **kw)
        srv.start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()


def ws_connect(srv, **kw):
    return connect(f"{srv.url}/call/{UUID}", subprotocols=[SUBPROTOCOL], compression=None, open_timeout=3, **kw)


def fork_works(srv, rec) -> bool:
    with ws_connect(srv) as ws:
        ws.send('{"uuid":"%s"}' % UUID)
        _, msg = rec.messages.get(timeout=3)
        return isinstance(msg, Metadata)


def _scenario(mode):
    """tests/fork_emfile_scenario.py: the descriptor limit is lowered in that process, not in this one."""
    rc, out, err = run_isolated([sys.executable, SCENARIO, mode], env=dict(os.environ, PYTHONPATH=ROOT))
    assert rc == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_accept_loop_survives_running_out_of_file_descriptors():
    out = _scenario("exact")
    degraded = out["degraded"]
    assert degraded["accept_errors"] > 0, "accept() never ran out of descriptors"
    assert not degraded["serving"], "running out of descriptors is not visible in health()"
    assert "Too many open files" in degraded["last_accept_error"]
    assert out["fork_after"] is True, f"the fork server stopped accepting after EMFILE: {out['fork_after']}"
    assert out["serving_after"], "health() never said serving again"
    assert 1 <= len(out["emfile_lines"]) <= 3, out["emfile_lines"]


def test_many_idle_sockets_at_a_low_descriptor_limit_do_not_end_the_server():
    """150 idle sockets against ~40 free descriptors: websockets' per-connection socketpair fails too."""
    out = _scenario("flood")
    assert out["degraded"]["accept_errors"] > 0, out
    assert out["fork_after"] is True, out["fork_after"]  # still at the low limit
    assert len(out["emfile_lines"]) <= 3, out["emfile_lines"]


def test_per_address_cap_drops_that_addresses_oldest_unconfirmed_socket(make_server):
    rec = Recorder()
    srv = make_server(rec, max_pending_per_address=5)
    socks = silent_from("127.0.0.3", srv.port, 8)
    try:
        assert wait_until(lambda: srv.guard.pending == 5 and srv.guard.dropped == 3, 5), srv.health()
        assert [sees_eof(s) for s in socks[:3]] == [True] * 3, "the oldest sockets of the address were kept"
        assert [sees_eof(s, 0.2) for s in socks[3:]] == [False] * 5, "newer sockets were dropped"
        assert fork_works(srv, rec), "another address was locked out"
    finally:
        for s in socks:
            s.close()


def test_total_cap_drops_unconfirmed_sockets_but_never_an_established_call(make_server):
    rec = Recorder(establish=True)
    srv = make_server(rec, max_connections=6, max_pending_per_address=100)
    with ws_connect(srv) as call:
        call.send('{"uuid":"%s"}' % UUID)
        conn, _ = rec.messages.get(timeout=3)
        assert conn.established
        socks = silent_from("127.0.0.4", srv.port, 12)
        try:
            assert wait_until(lambda: srv.guard.total == 6, 5), srv.health()
            assert srv.guard.pending == 5 and srv.guard.dropped == 7
            call.send(b"\x00" * 640)
            _, audio = rec.messages.get(timeout=3)
            assert audio == Audio(b"\x00" * 640, 16000), "the established call lost its fork"
        finally:
            for s in socks:
                s.close()


def test_guard_refuses_when_every_socket_carries_a_call():
    guard = ConnectionGuard(max_total=2, max_pending_per_address=10)
    a, b, c = socket.socketpair()[0], socket.socketpair()[0], socket.socketpair()[0]
    try:
        for s in (a, b):
            slot, dropped = guard.admit(s, ("10.0.0.1", 5000))
            guard.establish(slot)
            assert dropped == []
        slot, dropped = guard.admit(c, ("10.0.0.2", 5000))
        assert slot is None and dropped == [] and guard.refused == 1
    finally:
        for s in (a, b, c):
            s.close()


def test_fork_that_sends_nothing_after_the_upgrade_is_closed(make_server):
    srv = make_server(first_frame_timeout=0.5)
    with ws_connect(srv) as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1008
    assert wait_until(lambda: srv.guard.total == 0, 5)


# ----------------------------------------------------------------------------- finding 2 (log flood)
def test_refused_upgrades_are_logged_once_per_interval(make_server, caplog):
    srv = make_server(auth=("fs", "pw"))
    caplog.set_level(logging.INFO, logger="voiceagent.telephony")
    bad = "Authorization: Basic " + base64.b64encode(b"fs:nope").decode()
    for _ in range(150):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=3) as s:
            s.sendall((f"GET /call/{UUID} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: o/wzCnuvZPkOfHzHoyfukQ==\r\nSec-WebSocket-Version: 13\r\n"
                       f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n{bad}\r\n\r\n").encode())
            assert s.recv(12).startswith(b"HTTP/1.1 401")
    lines = [r for r in caplog.records if "credentials" in r.getMessage()]
    assert len(lines) == 1, f"{len(lines)} lines for 150 refusals"


def test_log_throttle_says_how_many_lines_it_suppressed(caplog):
    now = [100.0]
    throttle = LogThrottle(logging.getLogger("throttle-test"), interval=10, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="throttle-test")
    assert throttle.log("401", logging.WARNING, "refused %s", "a")
    for _ in range(41):
        assert not throttle.log("401", logging.WARNING, "refused %s", "b")
    assert throttle.log("404", logging.WARNING, "other kind")
    now[0] += 10.5
    assert throttle.log("401", logging.WARNING, "refused %s", "c")
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == ["refused a", "other kind", "refused c (41 more like this in the last 10s not logged)"]


# ----------------------------------------------------------------------------- finding 11 (JSON)
def test_deeply_nested_json_is_a_clean_rejection(make_server, caplog):
    deep = "[" * 4000 + "]" * 4000  # under 8 KiB
    with pytest.raises(ValueError):
        forkwire.parse_json_values(deep)
    assert "nested" in forkwire.parse_metadata(deep).error
    rec = Recorder()
    srv = make_server(rec)
    caplog.set_level(logging.ERROR)
    with ws_connect(srv) as ws:
        ws.send(deep)  # as the metadata
        ws.send(b"\x00" * 640)
        ws.send('{"x":' * 3000 + "1" + "}" * 3000)  # as a later text frame
        ws.send(b"\x01\x00" * 320)
        conn, first = rec.messages.get(timeout=3)
        assert first == Audio(b"\x00" * 640, 16000)
        assert rec.messages.get(timeout=3)[1] == Audio(b"\x01\x00" * 320, 16000), "the connection died"
    assert conn.metadata == {}
    assert not [r for r in caplog.records if r.exc_info], "an exception escaped"


def test_a_repeated_key_in_the_metadata_does_not_pick_the_sample_rate(make_server):
    rec = Recorder()
    srv = make_server(rec)
    with ws_connect(srv) as ws:
        ws.send('{"uuid":"%s","sampleRate":16000,"caller":"+1555","sampleRate":8000}' % UUID)
        ws.send(b"\x00" * 640)
        conn, msg = rec.messages.get(timeout=3)
        assert msg == Audio(b"\x00" * 640, 16000)
    assert conn.sample_rate == 16000 and conn.metadata == {}


# ----------------------------------------------------------------------------- finding 12d
class _ClosedWs:
    request = None

    @property
    def remote_address(self):
        raise OSError(9, "Bad file descriptor")


def test_fork_connection_on_a_socket_closed_under_it():
    conn = ForkConnection(_ClosedWs(), UUID, 16000, 8192)
    assert conn.remote == "?" and conn.path == ""


def test_server_uses_the_address_recorded_at_accept(make_server):
    rec = Recorder()
    srv = make_server(rec)
    with ws_connect(srv) as ws:
        ws.send("{}")
        conn, _ = rec.messages.get(timeout=3)
        local = ws.socket.getsockname()
        assert conn.remote == f"{local[0]}:{local[1]}"


# ----------------------------------------------------------------------------- finding 11 (prompt stop)
def test_stop_does_not_wait_for_handshakes_in_progress(make_server):
    srv = make_server(handshake_timeout=30)
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(f"GET /call/{UUID} HTTP/1.1\r\nHost: x\r\n".encode())  # never finished
    try:
        assert wait_until(lambda: srv.guard.total == 1, 5)
        t0 = time.monotonic()
        srv.stop()
        took = time.monotonic() - t0
        assert took < 3, f"stop took {took:.1f}s with a handshake in progress"
        assert sees_eof(s), "the half-open handshake was left open"
    finally:
        s.close()
