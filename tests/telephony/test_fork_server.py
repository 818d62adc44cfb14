"""ForkServer over real sockets: websockets clients, raw HTTP upgrades and the emulator's ForkClient."""
from __future__ import annotations

import base64
import json
import logging
import os
import socket

import gevent
import pytest
from gevent.event import Event
from gevent.queue import Empty, Queue
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from voiceagent.emulator.caller_audio import CallerAudio
from voiceagent.emulator.fork_client import ForkClient
from voiceagent.telephony.fork_server import Audio, ForkClosed, ForkServer, Metadata, Text
from voiceagent.telephony.forkwire import SUBPROTOCOL, wav_decode

UUID = "8eb532dd-ba0a-4941-aab3-a85a2ae06271"
UUID2 = "0cb8ff79-9358-4203-8173-5e276ec24733"


class Recorder:
    """A fork handler that records every message and signals when the handler returns."""

    def __init__(self, on_message=None):
        self.messages: Queue = Queue()
        self.connections: Queue = Queue()
        self.finished: Queue = Queue()
        self.on_message = on_message

    def __call__(self, conn):
        self.connections.put(conn)
        for msg in conn.messages():
            self.messages.put(msg)
            if self.on_message:
                self.on_message(conn, msg)
        self.finished.put(conn.call_uuid)

    def next(self, timeout=3.0):
        return self.messages.get(timeout=timeout)


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


def ws_connect(srv, path=f"/call/{UUID}", **kw):
    kw.setdefault("subprotocols", [SUBPROTOCOL])
    return connect(srv.url + path, compression=None, legacy=True, open_timeout=3, **kw)


def raw_upgrade(port, path, extra_headers=()):
    """Send an upgrade request by hand and return (status code, response head)."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Origin: http://127.0.0.1", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: o/wzCnuvZPkOfHzHoyfukQ==", "Sec-WebSocket-Version: 13",
             *extra_headers]
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    text = head.decode("latin-1")
    return int(text.split(" ", 2)[1]), text


PROTO = f"Sec-WebSocket-Protocol: {SUBPROTOCOL}"


def basic(user, pw):
    return "Authorization: Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


# ----------------------------------------------------------------------------- audio and metadata
def test_frames_of_any_even_size_arrive_and_odd_ones_are_dropped_with_a_log_line(make_server, caplog):
    rec = Recorder()
    srv = make_server(rec)
    caplog.set_level(logging.WARNING, logger="voiceagent.telephony.fork_server")
    with ws_connect(srv) as ws:
        ws.send('{"uuid":"%s","sampleRate":16000}' % UUID)
        for size in (960, 322, 641, 640):
            ws.send(bytes(range(256)) * (size // 256) + b"\x01" * (size % 256))
        assert rec.next() == Metadata({"uuid": UUID, "sampleRate": 16000})
        sizes = [len(rec.next().pcm) for _ in range(3)]
        assert sizes == [960, 322, 640]
    odd = [r for r in caplog.records if "odd length 641" in r.getMessage()]
    assert odd and odd[0].call_id == UUID


def test_pcm_bytes_pass_through_unchanged_with_the_metadata_rate(make_server):
    rec = Recorder()
    srv = make_server(rec)
    payload = os.urandom(320)
    with ws_connect(srv) as ws:
        ws.send('{"sampleRate":8000}')
        ws.send(payload)
        assert isinstance(rec.next(), Metadata)
        audio = rec.next()
        assert audio == Audio(payload, 8000)
    conn = rec.connections.get(timeout=1)
    assert conn.sample_rate == 8000 and conn.call_uuid == UUID and conn.remote.startswith("127.0.0.1:")


def test_concatenated_json_values_in_the_metadata_frame(make_server):
    rec = Recorder()
    srv = make_server(rec)
    with ws_connect(srv) as ws:
        ws.send('{"uuid":"%s","sampleRate":8000}{"seq":1} {"seq":2}' % UUID)
        ws.send(b"\x00" * 320)
        ws.send('{"seq":3}{"seq":4}')
        assert rec.next() == Metadata({"uuid": UUID, "sampleRate": 8000})
        assert rec.next().values == [{"seq": 1}, {"seq": 2}]
        assert rec.next() == Audio(b"\x00" * 320, 8000)
        assert rec.next().values == [{"seq": 3}, {"seq": 4}]
    conn = rec.connections.get(timeout=1)
    assert conn.metadata == {"uuid": UUID, "sampleRate": 8000}


@pytest.mark.parametrize("bad", ["not json", '{"uuid": ', "[1,2]", "x" * 9000])
def test_malformed_or_oversized_metadata_is_logged_and_the_call_continues(make_server, caplog, bad):
    rec = Recorder()
    srv = make_server(rec)
    caplog.set_level(logging.WARNING, logger="voiceagent.telephony.fork_server")
    with ws_connect(srv) as ws:
        ws.send(bad)
        ws.send(b"\x00" * 640)
        ws.send('{"later":true}')
        assert rec.next() == Audio(b"\x00" * 640, 16000)
        assert rec.next().values == [{"later": True}]
    conn = rec.connections.get(timeout=1)
    assert conn.metadata == {}
    warn = [r for r in caplog.records if "bad fork metadata" in r.getMessage()]
    assert warn and warn[0].call_id == UUID


def test_first_text_after_audio_is_not_metadata(make_server):
    rec = Recorder()
    srv = make_server(rec)
    with ws_connect(srv) as ws:
        ws.send(b"\x00" * 640)
        ws.send('{"seq":1}')
        assert isinstance(rec.next(), Audio)
        assert rec.next() == Text([{"seq": 1}], '{"seq":1}')


def test_oversized_frame_closes_with_1009_and_other_calls_continue(make_server):
    rec = Recorder()
    srv = make_server(rec, max_frame_bytes=4096)
    with ws_connect(srv, path=f"/call/{UUID2}") as other:
        other.send(b"\x00" * 640)
        assert isinstance(rec.next(), Audio)
        with ws_connect(srv) as ws:
            ws.send(b"\x00" * 5000)
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=3)
            assert ws.close_code == 1009
        finished = rec.finished.get(timeout=3)
        assert finished == UUID
        other.send(b"\x00" * 4096)
        assert rec.next() == Audio(b"\x00" * 4096, 16000)


# ----------------------------------------------------------------------------- upgrade refusals
def test_basic_auth_required(make_server):
    srv = make_server(auth=("freeswitch", "s3cret"))
    status, head = raw_upgrade(srv.port, f"/call/{UUID}", [PROTO])
    assert status == 401 and "WWW-Authenticate: Basic" in head
    assert raw_upgrade(srv.port, f"/call/{UUID}", [PROTO, basic("freeswitch", "wrong")])[0] == 401
    assert raw_upgrade(srv.port, f"/call/{UUID}", [PROTO, basic("other", "s3cret")])[0] == 401
    assert raw_upgrade(srv.port, f"/call/{UUID}", [PROTO, "Authorization: Basic !!!"])[0] == 401
    status, head = raw_upgrade(srv.port, f"/call/{UUID}", [PROTO, basic("freeswitch", "s3cret")])
    assert status == 101 and f"Sec-WebSocket-Protocol: {SUBPROTOCOL}" in head


def test_subprotocol_must_be_offered(make_server):
    srv = make_server()
    assert raw_upgrade(srv.port, f"/call/{UUID}")[0] == 400
    assert raw_upgrade(srv.port, f"/call/{UUID}", ["Sec-WebSocket-Protocol: chat"])[0] == 400
    assert raw_upgrade(srv.port, f"/call/{UUID}", [f"Sec-WebSocket-Protocol: chat, {SUBPROTOCOL}"])[0] == 101


@pytest.mark.parametrize("path", ["/", f"/ws/{UUID}", "/call/", "/call/not-a-uuid", f"/call/{UUID}x", f"/call/{UUID}/more"])
def test_bad_path_is_404(make_server, path):
    srv = make_server()
    assert raw_upgrade(srv.port, path, [PROTO])[0] == 404


def test_query_string_and_host_without_port_are_accepted(make_server):
    srv = make_server()
    status, _ = raw_upgrade(srv.port, f"/call/{UUID}?node=fs1", [PROTO])
    assert status == 101


def test_precheck_can_refuse_at_the_upgrade(make_server):
    seen = []

    def precheck(uuid):
        seen.append(uuid)
        if uuid == UUID:
            return 503, "draining"
        if uuid == UUID2:
            raise RuntimeError("boom")
        return None

    srv = make_server(precheck=precheck)
    status, head = raw_upgrade(srv.port, f"/call/{UUID}", [PROTO])
    assert status == 503 and head.startswith("HTTP/1.1 503")
    assert raw_upgrade(srv.port, f"/call/{UUID2}", [PROTO])[0] == 503
    assert raw_upgrade(srv.port, "/call/aaaaaaaa-0000-4000-8000-000000000001", [PROTO])[0] == 101
    assert seen == [UUID, UUID2, "aaaaaaaa-0000-4000-8000-000000000001"]


# ----------------------------------------------------------------------------- lifecycle
def test_peer_drop_mid_stream_ends_messages_and_the_handler(make_server):
    rec = Recorder()
    srv = make_server(rec)
    ws = ws_connect(srv)
    ws.send(b"\x00" * 640)
    assert isinstance(rec.next(), Audio)
    ws.socket.shutdown(socket.SHUT_RDWR)  # TCP gone, no Close frame
    ws.socket.close()
    assert rec.finished.get(timeout=5) == UUID
    conn = rec.connections.get(timeout=1)
    assert conn.closed
    with pytest.raises(ForkClosed):
        conn.send_kill_audio()


def test_handler_return_closes_and_handler_exception_does_not_kill_the_server(make_server, caplog):
    calls = []

    def handler(conn):
        calls.append(conn.call_uuid)
        if len(calls) == 1:
            raise ValueError("handler bug")

    srv = make_server(handler)
    caplog.set_level(logging.ERROR, logger="voiceagent.telephony.fork_server")
    for _ in range(2):
        with ws_connect(srv) as ws:
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=3)
            assert ws.close_code == 1000
    assert calls == [UUID, UUID]
    failed = [r for r in caplog.records if "fork handler failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].call_id == UUID and failed[0].exc_info


def test_stop_closes_live_connections(make_server):
    rec = Recorder()
    srv = make_server(rec)
    ws = ws_connect(srv)
    ws.send(b"\x00" * 640)
    assert isinstance(rec.next(), Audio)
    srv.stop()
    assert rec.finished.get(timeout=3) == UUID
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=3)
    assert ws.close_code == 1001
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()


# ----------------------------------------------------------------------------- with the emulator's ForkClient
def test_play_kill_disconnect_reach_a_real_fork_client(make_server, tmp_path):
    events: Queue = Queue()
    sent = Event()

    def handler(conn):
        def speak():  # another greenlet sends while messages() iterates
            conn.send_play_audio(b"\x01\x00" * 1600, sample_rate=16000, text="hi")
            conn.send_kill_audio()
            conn.send_disconnect()
            sent.set()

        for msg in conn.messages():
            if isinstance(msg, Metadata):
                gevent.spawn(speak)

    srv = make_server(handler, auth=("fs", "pw"))
    client = ForkClient(f"{srv.url}/call/{UUID}", call_uuid=UUID, metadata='{"uuid":"%s"}' % UUID,
                        audio=CallerAudio(16000), auth=("fs", "pw"), temp_dir=str(tmp_path),
                        on_event=lambda name, body: events.put((name, body)))
    client.start()
    assert events.get(timeout=3) == ("mod_audio_fork::connect", None)
    name, body = events.get(timeout=3)
    assert name == "mod_audio_fork::play_audio"
    path = json.loads(body)["file"]
    assert body == ('{"audioContentType":"wav","sampleRate":16000,"textContent":"hi","file":"%s"}' % path).encode()
    assert os.path.dirname(path) == str(tmp_path)
    assert os.path.basename(path).startswith(f"{UUID}_") and path.endswith(".tmp.wav")
    with open(path, "rb") as f:
        assert wav_decode(f.read()) == (b"\x01\x00" * 1600, 16000, 1)
    assert events.get(timeout=3) == ("mod_audio_fork::kill_audio", None)
    assert events.get(timeout=3) == ("mod_audio_fork::disconnect", None)
    assert sent.wait(3)
    assert client.connected  # disconnect does not hang up or close
    client.stop()
    assert client.join(5)
    assert not os.path.exists(path)
    with pytest.raises(Empty):
        events.get(timeout=0.1)


def test_fork_client_with_wrong_password_gets_connect_failed(make_server, tmp_path):
    events: Queue = Queue()
    srv = make_server(auth=("fs", "pw"))
    client = ForkClient(f"{srv.url}/call/{UUID}", call_uuid=UUID, audio=CallerAudio(16000), auth=("fs", "nope"),
                        temp_dir=str(tmp_path), on_event=lambda n, b: events.put((n, b)))
    client.start()
    assert events.get(timeout=3) == ("mod_audio_fork::connect_failed", b'{"reason":"HS: ws upgrade unauthorized"}')
