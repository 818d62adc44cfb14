"""EslConnection against a tiny scripted ESL server on a real loopback socket.

The server speaks just enough of the protocol (greeting, auth, command replies) for the
client's framing, auth, timeout, FIFO and reconnect logic; the FreeSWITCH emulator tests
(test_esl_emulator.py) cover real call flows.
"""
from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Callable, List, Optional

import gevent
import gevent.event
import gevent.queue
import pytest
from gevent import socket
from gevent.server import StreamServer

from tests.data import trace_files
from voiceagent.telephony import eslwire
from voiceagent.telephony.esl import (
    CommandError,
    EslAuthError,
    EslConnection,
    EslDisconnected,
    EslNotConnected,
    EslTimeout,
    subscription_command,
)



def reply(text: str, extra: str = "") -> bytes:
    return f"Content-Type: command/reply\nReply-Text: {text}\n{extra}\n".encode()


def api_response(body: str) -> bytes:
    b = body.encode()
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(b) + b


def ev_frame(name: str, body: bytes = b"", **headers: str) -> bytes:
    hs = [("Event-Name", name), ("FreeSWITCH-Switchname", "fs1"), ("Event-Date-Timestamp", "1795568177611562")]
    hs += [(k.replace("_", "-"), v) for k, v in headers.items()]
    return eslwire.event_frame(hs, body)


DISCONNECT = b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\nDisconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"


class FakeEsl:
    """Scripted server: ``handler(conn, command_line, headers)`` returns bytes to send or None.

    Records every command; ``conns`` holds the live sockets so tests can cut them.
    """

    def __init__(self, password: str = "ClueCon", handler: Optional[Callable] = None) -> None:
        self.password = password
        self.handler = handler or (lambda c, cmd, h: None)
        self.commands: "gevent.queue.Queue" = gevent.queue.Queue()
        self.log: List[str] = []
        self.conns: List[socket.socket] = []
        self.accepted = 0
        self.server = StreamServer(("127.0.0.1", 0), self._serve)
        self.server.start()
        self.port = self.server.server_port

    def _serve(self, sock, addr) -> None:
        self.accepted += 1
        self.conns.append(sock)
        sock.sendall(b"Content-Type: auth/request\n\n")
        buf = b""
        authed = False
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    lines = block.decode().split("\n")
                    cmd = lines[0]
                    headers = dict(l.split(": ", 1) for l in lines[1:] if ": " in l)
                    self.log.append(cmd)
                    self.commands.put((cmd, headers))
                    if not authed:
                        if cmd == f"auth {self.password}":
                            authed = True
                            sock.sendall(reply("+OK accepted"))
                        else:
                            sock.sendall(reply("-ERR invalid") + DISCONNECT)
                            return
                        continue
                    if cmd.startswith("event plain"):
                        sock.sendall(reply("+OK event listener enabled plain"))
                        continue
                    if cmd.startswith("filter "):
                        sock.sendall(reply("+OK filter added."))
                        continue
                    if cmd == "exit":
                        sock.sendall(reply("+OK bye") + DISCONNECT)
                        return
                    out = self.handler(sock, cmd, headers)
                    if out is not None:
                        sock.sendall(out)
        except OSError:
            pass
        finally:
            if sock in self.conns:
                self.conns.remove(sock)
            sock.close()

    def drop(self) -> None:
        for s in list(self.conns):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self.drop()
        self.server.stop(timeout=1)


@pytest.fixture
def make_server():
    servers = []

    def make(**kw):
        s = FakeEsl(**kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def make_conn():
    conns = []

    def make(port, **kw):
        kw.setdefault("command_timeout", 1.0)
        kw.setdefault("connect_timeout", 1.0)
        kw.setdefault("reconnect_max_delay", 0.2)
        c = EslConnection("fs1", "127.0.0.1", port, kw.pop("password", "ClueCon"), **kw)
        conns.append(c)
        return c

    yield make
    for c in conns:
        c.stop()


def next_command(server: FakeEsl, prefix: str, timeout: float = 2.0) -> tuple:
    with gevent.Timeout(timeout, AssertionError(f"no {prefix!r} command; saw {server.log}")):
        while True:
            cmd, headers = server.commands.get()
            if cmd.startswith(prefix):
                return cmd, headers


# ----------------------------------------------------------------------------- tests
def test_subscription_puts_custom_last_and_keeps_background_job():
    cmd = subscription_command(["CUSTOM", "mod_audio_fork::connect", "DTMF", "MEDIA_BUG_START"])
    assert cmd == "event plain DTMF MEDIA_BUG_START BACKGROUND_JOB CUSTOM mod_audio_fork::connect"


def test_connect_subscribes_and_api_returns_raw_body(make_server, make_conn):
    srv = make_server(handler=lambda s, cmd, h: api_response("_undef_") if cmd.startswith("api uuid_getvar") else None)
    conn = make_conn(srv.port)
    conn.start(timeout=2)
    assert conn.connected
    sub, _ = next_command(srv, "event plain")
    assert sub.startswith("event plain CHANNEL_CREATE") and sub.index("MEDIA_BUG_START") < sub.index("CUSTOM")
    assert sub.endswith("mod_audio_fork::error mod_audio_fork::json")
    assert conn.api("uuid_getvar 1 x") == "_undef_"


def test_bad_password_raises_clear_error(make_server, make_conn):
    srv = make_server(password="secret")
    conn = make_conn(srv.port, password="wrong")
    with pytest.raises(EslAuthError, match="rejected the password"):
        conn.start(timeout=2)
    assert not conn.connected


def test_start_wait_false_retries_until_freeswitch_is_up(make_conn):
    # Reserve a port, keep it closed while the client retries, then listen on it.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    conn = make_conn(port)
    up = gevent.event.Event()
    conn.on_connected(lambda c: up.set())
    conn.start(wait=False)
    with pytest.raises(EslNotConnected, match="not reachable"):
        conn.start(timeout=0.3)
    srv = FakeEsl()
    srv.server.stop()
    srv.server = StreamServer(("127.0.0.1", port), srv._serve)
    srv.server.start()
    try:
        assert up.wait(3), "never connected after FreeSWITCH came up"
        assert conn.connected
    finally:
        srv.stop()


def test_command_timeout_then_connection_usable_again(make_server, make_conn):
    def handler(s, cmd, h):
        if cmd.startswith("api stall"):
            return None  # never answers
        return api_response("+OK fine\n")

    srv = make_server(handler=handler)
    conn = make_conn(srv.port, command_timeout=0.3)
    ups = gevent.queue.Queue()
    conn.on_connected(lambda c: ups.put(c.connect_count))
    conn.start(timeout=2)
    assert ups.get(timeout=2) == 1
    with pytest.raises(EslTimeout, match="no reply to 'api stall now' within 0.3s"):
        conn.api("stall now")
    # FIFO sync is lost after a timeout: the client rebuilt the connection.
    assert ups.get(timeout=3) == 2
    assert conn.api("status") == "+OK fine\n"


def test_pending_command_fails_fast_when_socket_drops(make_server, make_conn):
    srv = make_server()  # never answers api
    conn = make_conn(srv.port, command_timeout=5.0)
    conn.start(timeout=2)
    g = gevent.spawn(conn.api, "status")
    next_command(srv, "api status")
    srv.drop()
    with gevent.Timeout(1.5, AssertionError("pending command did not fail fast")):
        with pytest.raises(EslDisconnected, match="connection lost"):
            g.get()


def test_replies_fifo_with_events_interleaved_and_slow_handler(make_server, make_conn):
    def handler(s, cmd, h):
        n = cmd.split()[-1]
        # an event between command and reply, as FreeSWITCH does
        return ev_frame("DTMF", Unique_ID="u-" + n, DTMF_Digit="1") + api_response(f"reply {n}")

    srv = make_server(handler=handler)
    conn = make_conn(srv.port)
    release = gevent.event.Event()
    seen = gevent.queue.Queue()

    def slow(ev):
        release.wait(5)  # blocks dispatch, must not block replies
        seen.put(ev.uuid)

    conn.on_event(slow)
    conn.start(timeout=2)
    results = [gevent.spawn(conn.api, f"echo {i}") for i in range(20)]
    gevent.joinall(results, timeout=3, raise_error=True)
    assert [g.value for g in results] == [f"reply {i}" for i in range(20)]
    release.set()
    assert [seen.get(timeout=2) for _ in range(20)] == [f"u-{i}" for i in range(20)]


def test_handler_exception_is_logged_with_call_id_and_dispatch_continues(make_server, make_conn, caplog):
    srv = make_server(handler=lambda s, cmd, h: ev_frame("DTMF", Unique_ID="call-1", DTMF_Digit="5")
                      + ev_frame("DTMF", Unique_ID="call-2", DTMF_Digit="6") + api_response("+OK"))
    conn = make_conn(srv.port)
    got = gevent.queue.Queue()

    def bad(ev):
        if ev.uuid == "call-1":
            raise RuntimeError("boom")
        got.put(ev.uuid)

    conn.on_event(bad)
    conn.start(timeout=2)
    with caplog.at_level(logging.ERROR, logger="voiceagent.telephony.esl"):
        conn.api("x")
        assert got.get(timeout=2) == "call-2"
    assert any("call-1" in r.getMessage() and "DTMF" in r.getMessage() for r in caplog.records)


def test_bgapi_correlates_by_client_job_uuid_out_of_order(make_server, make_conn):
    jobs = []

    def handler(s, cmd, h):
        if cmd.startswith("bgapi "):
            jobs.append((h["Job-UUID"], cmd[6:]))
            out = reply(f"+OK Job-UUID: {h['Job-UUID']}", f"Job-UUID: {h['Job-UUID']}\n")
            if len(jobs) == 10:  # answer all, newest first, bodies with ": " and %XX kept raw
                for job, c in reversed(jobs):
                    out += ev_frame("BACKGROUND_JOB", f"+OK {c} a: b %41\n".encode(), Job_UUID=job, Job_Command="echo")
            return out

    srv = make_server(handler=handler)
    conn = make_conn(srv.port)
    conn.start(timeout=2)
    greenlets = [gevent.spawn(conn.bgapi, f"echo {i}", 3) for i in range(10)]
    gevent.joinall(greenlets, timeout=5, raise_error=True)
    assert [g.value for g in greenlets] == [f"+OK echo {i} a: b %41\n" for i in range(10)]


def test_bgapi_rejected_and_expired(make_server, make_conn):
    def handler(s, cmd, h):
        if cmd.startswith("bgapi bad"):
            return reply("-ERR command not found")
        if cmd.startswith("bgapi"):
            return reply(f"+OK Job-UUID: {h['Job-UUID']}", f"Job-UUID: {h['Job-UUID']}\n")

    srv = make_server(handler=handler)
    conn = make_conn(srv.port)
    conn.start(timeout=2)
    with pytest.raises(CommandError, match="command not found"):
        conn.bgapi("bad thing")
    with pytest.raises(EslTimeout, match="no BACKGROUND_JOB"):
        conn.bgapi("lost job", timeout=0.2)
    assert conn.pending_jobs == 0


def test_forbidden_and_multiline_commands_refused(make_server, make_conn):
    srv = make_server()
    conn = make_conn(srv.port)
    conn.start(timeout=2)
    for bad in ("myevents 123", "nixevent HEARTBEAT", "noevents", "event json ALL"):
        with pytest.raises(ValueError, match="not allowed"):
            conn.send(bad)
    with pytest.raises(ValueError, match="one line"):
        conn.api("status\nevent plain ALL")


def test_reconnect_resubscribes_restores_filters_and_notifies(make_server, make_conn):
    srv = make_server(handler=lambda s, cmd, h: ev_frame("CHANNEL_PARK", Unique_ID="u1") + api_response("+OK"))
    conn = make_conn(srv.port)
    events = gevent.queue.Queue()
    conn.on_event(lambda e: events.put(e.name))
    conn.on_connected(lambda c: events.put("connected"))
    conn.on_disconnected(lambda c: events.put("disconnected"))
    conn.start(timeout=2)
    conn.add_filter("Unique-ID", "u1")
    assert events.get(timeout=2) == "connected"
    conn.api("x")
    assert events.get(timeout=2) == "CHANNEL_PARK"
    srv.drop()
    assert events.get(timeout=2) == "disconnected"
    assert events.get(timeout=3) == "connected"
    log_after = srv.log[srv.log.index("auth ClueCon") + 1:]
    second_auth = log_after.index("auth ClueCon")
    assert log_after[second_auth + 1].startswith("event plain ")
    assert log_after[second_auth + 2:second_auth + 4] == ["filter Event-Name BACKGROUND_JOB", "filter Unique-ID u1"]
    conn.api("x")
    assert events.get(timeout=2) == "CHANNEL_PARK"


def probed_connection(make_server, make_conn):
    """A connection probed every 0.2 s by a server whose status answer can be switched off (half-dead:
    TCP open, nothing answers); returns (server, connection, answer switch, queue of connects)."""
    answer = {"on": True}

    def handler(s, cmd, h):
        if cmd == "api status":
            return api_response("UP\n") if answer["on"] else None
        return api_response("+OK")

    srv = make_server(handler=handler)
    conn = make_conn(srv.port, keepalive_interval=0.2, command_timeout=0.3)
    ups = gevent.queue.Queue()
    conn.on_connected(lambda c: ups.put(1))
    return srv, conn, answer, ups


def test_idle_connection_is_probed_and_dead_one_replaced(make_server, make_conn):
    srv, conn, answer, ups = probed_connection(make_server, make_conn)
    conn.start(timeout=2)
    ups.get(timeout=1)
    next_command(srv, "api status", timeout=2)  # probed while idle
    answer["on"] = False  # half-dead: TCP open, nothing answers
    assert ups.get(timeout=3) == 1, "a silent connection was not replaced"


def test_stop_fails_waiting_jobs(make_server, make_conn):
    srv = make_server(handler=lambda s, cmd, h: reply(f"+OK Job-UUID: {h['Job-UUID']}", f"Job-UUID: {h['Job-UUID']}\n"))
    conn = make_conn(srv.port)
    conn.start(timeout=2)
    result = conn.bgapi_async("originate x &park()")
    conn.stop()
    with pytest.raises(EslNotConnected):
        result.get(timeout=1)
    with pytest.raises(EslNotConnected):
        conn.api("status")


# ----------------------------------------------------------------------------- traces
TRACE_FILES = trace_files("*.esl.bin")


def _replay_server(data: bytes, seed: int) -> FakeEsl:
    """Serves a trace's bytes after auth, in random chunk sizes (the greeting is in the trace)."""
    rnd = random.Random(seed)

    class Replay(FakeEsl):
        def _serve(self, sock, addr):
            self.conns.append(sock)
            i = 0
            try:
                while i < len(data):
                    n = rnd.choice([1, 2, 7, 64, 1000, 4096, 65536])
                    sock.sendall(data[i:i + n])
                    i += n
                    if rnd.random() < 0.05:
                        gevent.sleep(0)
            except OSError:
                pass
            finally:
                sock.close()

    return Replay()


def _expected_frames(data: bytes):
    return list(eslwire.FrameReader().feed(data))


@pytest.mark.parametrize("path", TRACE_FILES, ids=lambda p: p.name)
def test_trace_frames_through_client_reader(path):
    """Every real frame passes through the client's reader: events keep their raw bodies."""
    data = path.read_bytes()
    frames = _expected_frames(data)
    want_events = [eslwire.parse_event_plain(f.body) for f in frames if f.content_type == "text/event-plain"]

    done = gevent.event.Event()

    class Owner:
        node = "fs1"
        host, port, password = "127.0.0.1", 0, "ClueCon"
        connect_timeout = command_timeout = 1.0

        def __init__(self):
            self.events = []

        def _on_wire_event(self, ev):
            self.events.append(ev)
            if len(self.events) == len(want_events):
                done.set()

    from voiceagent.telephony.esl_protocol import EslProtocol

    owner = Owner()
    srv = _replay_server(data, seed=sum(path.name.encode()))
    try:
        proto = EslProtocol(owner)
        proto.sock = socket.create_connection(("127.0.0.1", srv.port))
        proto.connected = True
        # Pretend every command/reply + api/response answers a command we sent.
        slots = []
        for f in frames:
            if f.content_type in ("command/reply", "api/response"):
                s = gevent.event.AsyncResult()
                proto._pending.append(s)
                slots.append(s)
        proto.start_event_handlers()
        if want_events:
            assert done.wait(10)
        for s in slots:
            s.get(timeout=10)
        proto.close()
    finally:
        srv.stop()
    assert [(e.headers, e.body) for e in owner.events] == [(e.headers, e.body) for e in want_events]
    replies = [f for f in frames if f.content_type in ("command/reply", "api/response")]
    assert [s.get().text for s in slots] == [
        (f.body.decode() if f.content_type == "api/response" else f.get("Reply-Text")) for f in replies
    ]
    for ev in owner.events:
        if ev.name == "BACKGROUND_JOB":
            assert ev.body and b"Content-Length: " not in ev.body, ev.body
            assert int(ev.get("Content-Length")) == len(ev.body)
        if ev.subclass == "mod_audio_fork::play_audio" and ev.get("Event-Calling-File") == "mod_audio_fork.c":
            assert ev.body.startswith(b"{") and b'"file":"' in ev.body


def test_from_settings_uses_config_timeouts():
    from voiceagent.config import load_settings

    s = load_settings(esl_password="pw", esl_command_timeout=1.5, esl_connect_timeout=2.5,
                      esl_reconnect_max_delay=3.5, bgapi_timeout=4.5)
    (node, host, port), = load_settings(esl_nodes="fsx=127.0.0.1:8021").esl_endpoints()
    c = EslConnection.from_settings(s, node, host, port)
    assert (c.node, c.port, c.password) == ("fsx", 8021, "pw")
    assert (c.command_timeout, c.connect_timeout, c.reconnect_max_delay, c.bgapi_timeout) == (1.5, 2.5, 3.5, 4.5)


def test_malformed_input_is_logged_and_never_kills_the_connection(make_server, make_conn, caplog):
    def handler(s, cmd, h):
        if cmd == "api garbage-event":
            bad = b"Event-Name: DTMF\nno colon here\n\n"
            return (b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(bad) + bad
                    + b"Content-Length: 2\nContent-Type: text/strange\n\n{}"
                    + ev_frame("DTMF", Unique_ID="ok", DTMF_Digit="3") + api_response("+OK"))
        if cmd == "api garbage-frame":
            return b"Content-Type: api/response\nContent-Length: many\n\n"
        return api_response("+OK")

    srv = make_server(handler=handler)
    conn = make_conn(srv.port)
    got = gevent.queue.Queue()
    conn.on_event(lambda e: got.put(e.uuid))
    ups = gevent.queue.Queue()
    conn.on_connected(lambda c: ups.put(1))
    conn.start(timeout=2)
    ups.get(timeout=2)
    with caplog.at_level(logging.WARNING, logger="voiceagent.telephony.esl"):
        assert conn.api("garbage-event") == "+OK"
        assert got.get(timeout=2) == "ok"  # the bad event was dropped, the good one delivered
        assert conn.connect_count == 1
        # an unframeable message cannot be skipped: the connection is rebuilt, with a log line
        with pytest.raises(EslDisconnected, match="protocol error"):
            conn.api("garbage-frame")
        ups.get(timeout=3)
        assert conn.api("status") == "+OK"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "unparsable event dropped" in text and "text/strange" in text and "bad Content-Length" in text


# ----------------------------------------------------------------------------- hardening: storms and floods
class _FlakyEsl:
    """Accepts, authenticates and subscribes every client, then breaks the connection its way.

    ``mode``: 'drop' closes the socket, 'bad-frame' sends an unframeable message, 'close-on-
    auth' closes as soon as the password arrives (before replying).
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.accepted = 0
        self.server = StreamServer(("127.0.0.1", 0), self._serve)
        self.server.start()
        self.port = self.server.server_port

    def _serve(self, sock, addr) -> None:
        self.accepted += 1
        try:
            sock.sendall(b"Content-Type: auth/request\n\n")
            buf = b""
            while True:
                data = sock.recv(4096)
                if not data:
                    return
                buf += data
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    cmd = block.decode().split("\n")[0]
                    if cmd.startswith("auth "):
                        if self.mode == "close-on-auth":
                            return
                        sock.sendall(reply("+OK accepted"))
                    elif cmd.startswith("event plain"):
                        sock.sendall(reply("+OK event listener enabled plain"))
                        if self.mode == "bad-frame":
                            sock.sendall(b"Content-Type: api/response\nContent-Length: many\n\n")
                        return
        except OSError:
            pass
        finally:
            sock.close()

    def stop(self) -> None:
        self.server.stop(timeout=1)


@pytest.fixture
def flaky_server():
    servers = []

    def make(mode):
        s = _FlakyEsl(mode)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.mark.parametrize("mode", ["drop", "bad-frame"])
def test_server_that_drops_after_auth_gets_a_backoff_not_a_reconnect_storm(mode, flaky_server, make_conn, caplog):
    """A connection that dies right after connecting does not reset the backoff (it once gave
    8,000-10,700 full reconnects in 11 s); the reconnect cycle's log lines are throttled."""
    srv = flaky_server(mode)
    conn = make_conn(srv.port, reconnect_max_delay=10.0)  # healthy_after: the default, 30 s
    with caplog.at_level(logging.INFO, logger="voiceagent.telephony.esl"):
        conn.start(wait=False)
        gevent.sleep(2.0)  # an observation window, not a synchronisation: count what happens in it
        accepted = srv.accepted
    conn.stop()
    # backoff 0.1, 0.2, 0.4, 0.8 ... (with jitter): about 5 connections in 2 s
    assert 3 <= accepted <= 12, f"{accepted} connections in 2 s"
    lines = [r.getMessage() for r in caplog.records if r.name == "voiceagent.telephony.esl"]
    lost = [m for m in lines if "connection lost" in m]
    connected = [m for m in lines if "connected to" in m]
    assert 1 <= len(lost) <= 2 and 1 <= len(connected) <= 2, lines


def test_backoff_restarts_from_zero_after_a_healthy_connection(make_server, make_conn):
    srv = make_server(handler=lambda s, cmd, h: api_response("+OK"))
    conn = make_conn(srv.port, reconnect_max_delay=10.0, healthy_after=0.2)
    ups = gevent.queue.Queue()
    conn.on_connected(lambda c: ups.put(1))
    conn.start(timeout=2)
    ups.get(timeout=2)
    for _ in range(5):  # quick drops: the backoff grows past a second
        srv.drop()
        ups.get(timeout=5)
    with gevent.Timeout(3, AssertionError("the connection never stayed up for healthy_after")):
        while time.monotonic() - conn.up_since < 0.3:
            gevent.sleep(0.05)
    srv.drop()
    t0 = time.monotonic()
    ups.get(timeout=5)
    assert time.monotonic() - t0 < 0.6, "a healthy connection's loss is retried at once"


def test_log_lines_never_repeat_the_node_prefix(flaky_server, make_server, make_conn, caplog):
    srv = flaky_server("close-on-auth")
    conn = make_conn(srv.port)
    _, probed, answer, ups = probed_connection(make_server, make_conn)
    with caplog.at_level(logging.INFO, logger="voiceagent.telephony.esl"):
        conn.start(wait=False)
        probed.start(timeout=2)
        ups.get(timeout=2)
        answer["on"] = False  # the probe times out: the connection is replaced
        ups.get(timeout=3)
        with gevent.Timeout(3, AssertionError("no reconnect attempt logged")):
            while not any("retrying" in r.getMessage() for r in caplog.records):
                gevent.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if r.name == "voiceagent.telephony.esl"]
    assert any("liveness probe failed" in m for m in lines), lines
    assert lines and all(m.count("ESL fs1:") <= 1 for m in lines), [m for m in lines if m.count("ESL fs1:") > 1]


def test_event_flood_is_held_back_by_tcp_not_queued_without_bound(make_server, make_conn):
    """A flood while the handlers are busy: the reader stops reading at the queue limit (TCP
    pushes back on FreeSWITCH) instead of growing memory, and afterwards every event arrives,
    in order (none is dropped)."""
    n = 20000
    flood = b"".join(ev_frame("CHANNEL_EXECUTE", Unique_ID=f"u{i % 10}", Seq=str(i)) for i in range(n))

    def handler(s, cmd, h):
        if cmd == "api flood":
            s.sendall(api_response("+OK"))
            return flood
        return api_response("+OK")

    srv = make_server(handler=handler)
    conn = make_conn(srv.port, max_queued_events=100)
    gate = gevent.event.Event()
    got: List[int] = []

    def slow(ev):
        gate.wait()
        got.append(int(ev.get("Seq")))

    conn.on_event(slow)
    conn.start(timeout=2)
    assert conn.api("flood") == "+OK"
    with gevent.Timeout(5, AssertionError("the flood never filled the queue")):
        while conn._queue.qsize() < 100:
            gevent.sleep(0.01)
    gevent.sleep(0.5)  # an observation window: the reader had every chance to read on
    queued = conn._queue.qsize()
    assert queued < 2000, f"{queued} of {n} events queued while the handler was blocked"
    gate.set()
    with gevent.Timeout(20, AssertionError(f"only {len(got)} of {n} events delivered")):
        while len(got) < n:
            gevent.sleep(0.05)
    assert got == list(range(n))
    assert conn.api("status") == "+OK"  # and the connection is as good as before
    assert conn.connect_count == 1


def test_reader_lets_other_greenlets_run_while_a_flood_is_waiting(make_server, make_conn):
    """gevent's recv returns without switching while data is waiting: a reader that never
    yields froze the whole worker (every node, every call, the heartbeat) for a flood's length."""
    n = 40000
    flood = b"".join(ev_frame("CHANNEL_EXECUTE", Unique_ID=f"u{i % 10}", Seq=str(i)) for i in range(n))

    def handler(s, cmd, h):
        if cmd == "api flood":
            s.sendall(api_response("+OK"))
            return flood
        return api_response("+OK")

    srv = make_server(handler=handler)
    conn = make_conn(srv.port, max_queued_events=10 ** 7)  # no back-pressure: only the yields count here
    got = [0]
    conn.on_event(lambda e: got.__setitem__(0, got[0] + 1))
    conn.start(timeout=2)
    gaps: List[float] = []
    stop = gevent.event.Event()

    def tick():
        last = time.monotonic()
        while not stop.is_set():
            gevent.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = gevent.spawn(tick)
    conn.api("flood")
    with gevent.Timeout(30, AssertionError(f"only {got[0]} of {n} events delivered")):
        while got[0] < n:
            gevent.sleep(0.01)
    stop.set()
    ticker.join()
    # yielding every 64 frames: gaps of a few ms (~20 ms measured); never yielding: seconds
    assert max(gaps) < 0.5, f"other greenlets waited {max(gaps):.2f}s while the reader parsed"
