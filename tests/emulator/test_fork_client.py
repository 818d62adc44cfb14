"""ForkClient (the emulated mod_audio_fork) against plain websockets / raw socket servers."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import time
import wave

import gevent
import numpy as np
import pytest
from gevent.queue import Empty, Queue
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve

from voiceagent.emulator.caller_audio import CallerAudio
from voiceagent.emulator.fork_client import ForkClient
from tests.ws_helpers import serve_in_greenlet

UUID = "cb1cdc4b-e635-41db-8a6d-a43f8dc4552e"
META = '{"event":"start","uuid":"%s","caller":"sipp","callee":"agent","sampleRate":16000,"mix":"mono"}' % UUID


class WsServer:
    """A plain websockets server that records what arrives, in order, with arrival times."""

    def __init__(self, reply=None, reject=None, close_after=None):
        self.frames: Queue = Queue()      # (monotonic time, str | bytes) then ("close", code, reason)
        self.requests: Queue = Queue()
        self.reply = reply                # list of frames to send after the first message
        self.close_after = close_after
        self.connections = 0

        def process_request(conn, request):
            self.requests.put(request)
            if reject:
                return conn.respond(reject, "no\n")
            return None

        self.srv = serve(self._handler, "127.0.0.1", 0, subprotocols=["audio.drachtio.org"], compression=None,
                         process_request=process_request, max_size=None)
        self.port = self.srv.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.g = serve_in_greenlet(self.srv)

    def _handler(self, ws):
        self.connections += 1
        self.ws = ws
        try:
            first = True
            for msg in ws:
                self.frames.put((time.monotonic(), msg))
                if first:
                    first = False
                    for r in self.reply or ():
                        ws.send(r)
                    if self.close_after is not None:
                        ws.close(1000, self.close_after)
        except ConnectionClosed:
            pass
        rcvd = ws.protocol.close_rcvd
        self.frames.put((time.monotonic(), ("close", rcvd.code if rcvd else None, rcvd.reason if rcvd else None)))

    def next(self, timeout=3.0):
        return self.frames.get(timeout=timeout)[1]

    def stop(self):
        self.srv.shutdown()


@pytest.fixture
def servers():
    made = []

    def make(**kw):
        s = WsServer(**kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def make_client(url, tmp_path, events=None, **kw):
    events = events if events is not None else Queue()
    kw.setdefault("audio", CallerAudio(kw.get("sample_rate", 16000)))
    c = ForkClient(url, call_uuid=UUID, temp_dir=str(tmp_path), on_event=lambda n, b: events.put((n, b)), **kw)
    return c, events


# ----------------------------------------------------------------------------- handshake
def test_upgrade_request_is_byte_exact_like_libwebsockets(tmp_path):
    got: Queue = Queue()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def serve_once():
        s, _ = listener.accept()
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        key = [l for l in head.split(b"\r\n") if l.startswith(b"Sec-WebSocket-Key: ")][0][19:]
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: audio.drachtio.org\r\n\r\n")
        got.put((head, key))
        first = s.recv(2)  # first frame header: FIN + text, masked
        got.put(first)
        s.close()

    g = gevent.spawn(serve_once)
    client, events = make_client(f"ws://127.0.0.1:{port}/call/x?y=1", tmp_path, metadata=META, auth=("fs", "pw"))
    client.start()
    head, key = got.get(timeout=3)
    assert len(base64.b64decode(key)) == 16
    assert head == (b"GET /call/x?y=1 HTTP/1.1\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nHost: 127.0.0.1\r\n"
                    b"Origin: http://127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Protocol: audio.drachtio.org\r\n"
                    b"Sec-WebSocket-Version: 13\r\nAuthorization: Basic ZnM6cHc=\r\n\r\n")
    first = got.get(timeout=3)
    assert first[0] == 0x81 and first[1] & 0x80  # FIN text, masked
    client.hangup()
    assert client.join(5)
    g.join(1)
    listener.close()


def test_metadata_first_then_mono_16k_frames_of_640_bytes(servers, tmp_path):
    srv = servers()
    client, events = make_client(srv.url, tmp_path, metadata=META)
    client.start()
    assert srv.next() == META
    assert events.get(timeout=3) == ("mod_audio_fork::connect", None)
    assert [len(srv.next()) for _ in range(3)] == [640, 640, 640]
    req = srv.requests.get(timeout=1)
    assert req.headers["Host"] == "127.0.0.1" and "Sec-WebSocket-Extensions" not in req.headers
    client.stop()
    assert client.join(5)


@pytest.mark.parametrize("mix,rate,size", [("mono", 8000, 320), ("stereo", 16000, 1280), ("mixed", 16000, 640)])
def test_frame_sizes_by_mix_and_rate(servers, tmp_path, mix, rate, size):
    srv = servers()
    client, _ = make_client(srv.url, tmp_path, metadata='{"mix":"%s"}' % mix, mix=mix, sample_rate=rate, speed=4)
    client.start()
    assert srv.next() == '{"mix":"%s"}' % mix
    assert {len(srv.next()) for _ in range(5)} == {size}
    client.hangup()
    assert client.join(5)


def test_stereo_left_is_caller_right_is_played_and_mixed_sums_them(servers, tmp_path):
    n = 320
    caller = (np.arange(n * 4) % 1000).astype("<i2")
    played = np.full(n, -7, dtype="<i2").tobytes()
    for mix in ("stereo", "mixed"):
        srv = servers()
        audio = CallerAudio(16000)
        audio.say(caller.tobytes())
        client, _ = make_client(srv.url, tmp_path, mix=mix, audio=audio, speed=4, played_audio=lambda k: played[:2 * k])
        client.start()
        frame = np.frombuffer(srv.next(), dtype="<i2")
        if mix == "stereo":
            assert (frame[0::2] == caller[:n]).all() and (frame[1::2] == -7).all()
        else:
            assert (frame == caller[:n] - 7).all()
        client.hangup()
        assert client.join(5)


def test_stereo_sends_nothing_while_nothing_is_played(servers, tmp_path):
    # discrepancy 10: stereo/mixed forks only stream while FreeSWITCH writes audio
    srv = servers()
    playing = {"on": False}
    client, _ = make_client(srv.url, tmp_path, mix="stereo", speed=10,
                            played_audio=lambda k: b"\x01\x00" * k if playing["on"] else None)
    client.start()
    with pytest.raises(Empty):
        srv.frames.get(timeout=0.2)
    assert client.frames_sent == 0
    playing["on"] = True
    assert len(srv.next()) == 1280
    client.hangup()
    assert client.join(5)


def test_caller_speech_is_streamed_in_order_then_silence(servers, tmp_path):
    srv = servers()
    audio = CallerAudio(16000)
    speech = os.urandom(640 * 3)
    audio.say(speech)
    client, _ = make_client(srv.url, tmp_path, audio=audio, speed=4)
    client.start()
    assert b"".join(srv.next() for _ in range(4)) == speech + b"\x00" * 640
    assert audio.wait_idle(1)
    client.hangup()
    assert client.join(5)


@pytest.mark.parametrize("speed,frames", [(1.0, 15), (10.0, 100)])
def test_cadence_is_real_time_divided_by_speed(servers, tmp_path, speed, frames):
    srv = servers()
    client, _ = make_client(srv.url, tmp_path, speed=speed)
    client.start()
    times = [srv.frames.get(timeout=3)[0] for _ in range(frames + 1)]
    expected = frames * 0.020 / speed
    elapsed = times[-1] - times[0]
    # paced against the start, so the total does not drift (loose bounds: shared 2-core machine)
    assert expected * 0.85 < elapsed < expected * 1.25 + 0.02, elapsed
    client.hangup()
    assert client.join(5)


# ----------------------------------------------------------------------------- ending
def test_stop_with_final_text_sends_text_then_close_1000_without_reason(servers, tmp_path):
    srv = servers()
    client, events = make_client(srv.url, tmp_path, metadata='{"mix":"mono","rate":8000}', sample_rate=8000)
    client.start()
    assert srv.next() == '{"mix":"mono","rate":8000}'
    assert len(srv.next()) == 320
    client.stop('{"final":true}')
    assert client.join(5)
    rest = []
    while True:
        m = srv.next()
        rest.append(m)
        if isinstance(m, tuple):
            break
    assert rest[-2:] == ['{"final":true}', ("close", 1000, "")]
    assert all(isinstance(m, bytes) for m in rest[:-2])
    assert [e for e in _drain(events) if e[0] != "mod_audio_fork::connect"] == []  # no disconnect on stop


def test_hangup_sends_close_1000_and_no_text(servers, tmp_path):
    srv = servers()
    client, events = make_client(srv.url, tmp_path, metadata=META)
    client.start()
    assert srv.next() == META
    client.hangup()
    assert client.join(5)
    rest = []
    while not rest or not isinstance(rest[-1], tuple):
        rest.append(srv.next())
    assert rest[-1] == ("close", 1000, "") and not any(isinstance(m, str) for m in rest)


def test_server_close_raises_disconnect_without_body_and_never_reconnects(servers, tmp_path):
    srv = servers(close_after="server closing")
    client, events = make_client(srv.url, tmp_path, metadata=META)
    client.start()
    assert events.get(timeout=3) == ("mod_audio_fork::connect", None)
    assert events.get(timeout=3) == ("mod_audio_fork::disconnect", None)
    assert srv.next() == META
    # FreeSWITCH echoes the server's code and reason
    while True:
        m = srv.next()
        if isinstance(m, tuple):
            assert m == ("close", 1000, "server closing")
            break
    assert client.join(3) and not client.connected
    client.send_text('{"after":"disconnect"}')  # silently dropped
    with pytest.raises(Empty):
        events.get(timeout=0.3)
    assert srv.connections == 1


def test_send_text_arrives_as_its_own_frames(servers, tmp_path):
    srv = servers()
    client, events = make_client(srv.url, tmp_path, metadata=META, speed=0.05)  # 400 ms frames: texts only
    client.start()
    assert srv.next() == META
    client.send_text('{"seq":1}')
    client.send_text('{"seq":2}')
    assert [srv.next(), srv.next()] == ['{"seq":1}', '{"seq":2}']
    client.hangup()
    assert client.join(5)


# ----------------------------------------------------------------------------- connect failures
def test_connect_refused(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    client, events = make_client(f"ws://127.0.0.1:{port}/", tmp_path, metadata=META)
    client.start()
    assert events.get(timeout=5) == ("mod_audio_fork::connect_failed", b'{"reason":"Unable to connect"}')
    assert client.join(2) and not client.connected


def test_non_101_answer(servers, tmp_path):
    srv = servers(reject=403)
    client, events = make_client(srv.url + "reject", tmp_path, metadata=META)
    client.start()
    assert events.get(timeout=5) == ("mod_audio_fork::connect_failed", b'{"reason":"HS: ws upgrade response not 101"}')
    with pytest.raises(Empty):
        events.get(timeout=0.2)


# ----------------------------------------------------------------------------- server → FreeSWITCH texts
def _wav(n_samples=800, rate=16000):
    import io
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(b"\x02\x00" * n_samples)
    return buf.getvalue()


def _drain(q):
    out = []
    while True:
        try:
            out.append(q.get(timeout=0.3))
        except Empty:
            return out


def test_server_texts_become_custom_events_and_temp_files(servers, tmp_path):
    wav = base64.b64encode(_wav()).decode()
    raw8 = base64.b64encode(b"\x03\x00" * 80).decode()
    replies = [
        '{"type":"playAudio","data":{"sampleRate":16000,"audioContent":"%s"}}' % wav,  # no content type: FS would crash
        "not json",
        '{"type":"mark"}',
        '{"type":"playAudio","data":{"audioContentType":"wav","sampleRate":16000,"audioContent":"%s","textContent":"tone one"}}' % wav,
        '{"type":"playAudio","data":{"audioContentType":"raw","sampleRate":8000,"audioContent":"%s"}}' % raw8,
        '{"type":"killAudio"}',
        '{"type":"transcription","data":{"text":"hello there"}}',
        '{"type":"transfer"}',
        '{"type":"error","data":{"code":42}}',
        '{"type":"disconnect"}',
        '{"anything": 1}',
    ]
    srv = servers(reply=replies)
    client, events = make_client(srv.url, tmp_path, metadata=META)
    client.start()
    assert events.get(timeout=3) == ("mod_audio_fork::connect", None)
    got = _drain(events)
    names = [n for n, _ in got]
    assert names == ["mod_audio_fork::play_audio", "mod_audio_fork::play_audio", "mod_audio_fork::kill_audio",
                     "mod_audio_fork::transcription", "mod_audio_fork::transfer", "mod_audio_fork::error",
                     "mod_audio_fork::disconnect", "mod_audio_fork::json"]
    wav_body, raw_body = json.loads(got[0][1]), json.loads(got[1][1])
    assert got[0][1] == ('{"audioContentType":"wav","sampleRate":16000,"textContent":"tone one","file":"%s"}'
                         % wav_body["file"]).encode()
    n1 = int(wav_body["file"].rsplit("_", 1)[1].split(".")[0])
    assert raw_body["file"] == str(tmp_path / f"{UUID}_{n1 + 1}.tmp.r8")  # module-wide counter
    with open(wav_body["file"], "rb") as f:
        assert f.read() == _wav()
    with open(raw_body["file"], "rb") as f:
        assert f.read() == b"\x03\x00" * 80
    assert [b for _, b in got[2:]] == [None, b'{"text":"hello there"}', None, b'{"code":42}', None, b'{"anything":1}']
    assert client.connected
    client.stop()
    assert client.join(5)
    assert not os.path.exists(wav_body["file"]) and not os.path.exists(raw_body["file"])


def test_temp_files_are_deleted_on_stop_after_a_server_close(servers, tmp_path):
    wav = base64.b64encode(_wav()).decode()
    srv = servers(reply=['{"type":"playAudio","data":{"audioContentType":"wav","sampleRate":16000,"audioContent":"%s"}}' % wav],
                  close_after="bye")
    client, events = make_client(srv.url, tmp_path, metadata=META)
    client.start()
    got = _drain(events)
    assert [n for n, _ in got] == ["mod_audio_fork::connect", "mod_audio_fork::play_audio", "mod_audio_fork::disconnect"]
    path = json.loads(got[1][1])["file"]
    assert os.path.exists(path)  # the bug stays attached until stop
    client.stop()
    assert not os.path.exists(path)


# ----------------------------------------------------------------------------- CallerAudio
def test_caller_audio_resamples_and_reads_wav_files(tmp_path):
    audio = CallerAudio(16000)
    assert audio.idle() and audio.read(4) == b"\x00" * 8
    tone = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 8000).astype("<i2").tobytes()
    audio.say((tone, 8000))
    assert not audio.idle()
    assert abs(audio.pending_seconds() - 1.0) < 0.01
    path = tmp_path / "a.wav"
    path.write_bytes(_wav(n_samples=1600, rate=16000))
    audio.say(str(path))
    out = audio.read(16000 + 1600 + 100)
    assert len(out) == 2 * (16000 + 1600 + 100)
    assert out[2 * 16000:2 * 17600] == b"\x02\x00" * 1600 and out[-200:] == b"\x00" * 200
    assert audio.wait_idle(0) and audio.idle()
    with pytest.raises(ValueError):
        audio.say(b"\x00")
    with pytest.raises(TypeError):
        audio.say(123)
