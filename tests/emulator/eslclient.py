"""A small raw-socket ESL client for the emulator tests, and helpers to read the captures."""
from __future__ import annotations

import ast
import json
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import gevent
from gevent.event import Event

from voiceagent.telephony.eslwire import Frame, FrameReader, parse_event_plain

from tests.data import FREESWITCH_TRACES

TRACES = FREESWITCH_TRACES
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
IGNORED_EVENTS = ("HEARTBEAT", "RE_SCHEDULE")
EVENT_TYPES = ("text/event-plain", "text/event-json", "text/event-xml")


def traces_dir() -> Path:
    if not TRACES.is_dir():
        raise RuntimeError(f"FreeSWITCH captures not found at {TRACES}")
    return TRACES


def trace_frames(name: str) -> List[Frame]:
    return list(FrameReader().feed((traces_dir() / f"{name}.esl.bin").read_bytes()))


def trace_sent(name: str) -> List[Tuple[float, int, bytes]]:
    """``NAME.sent.txt`` entries: (t, connection number, exact bytes)."""
    out = []
    for line in (traces_dir() / f"{name}.sent.txt").read_text().splitlines():
        m = re.match(r"^\+\s*([\d.]+)s conn(\d+)\s+\d+ bytes\s+(.*)$", line)
        if m:
            out.append((float(m.group(1)), int(m.group(2)), ast.literal_eval("b" + m.group(3))))
    return out


def trace_conn_ranges(name: str) -> List[Tuple[int, int]]:
    text = (traces_dir() / f"{name}.txt").read_text()
    return [(int(a), int(b)) for a, b in re.findall(r"#\s+conn\d+: bytes \[(\d+), (\d+)\)", text)]


def is_event(frame: Frame) -> bool:
    return frame.content_type in EVENT_TYPES


def event_shape(frame: Frame) -> Tuple[str, Tuple[str, ...], bool, str]:
    """(key, header names without variable_*, carries variables, Channel-Name) of an event frame."""
    if frame.content_type == "text/event-json":
        pairs = json.loads(frame.body, object_pairs_hook=lambda p: p)
        names = tuple(k for k, _ in pairs)
        return "json:" + dict(pairs).get("Event-Subclass", dict(pairs).get("Event-Name", "")), names, False, ""
    if frame.content_type == "text/event-xml":
        names = tuple(re.findall(r"^    <([A-Za-z0-9_-]+)>", frame.body.decode(), re.M))
        return "xml", names, False, ""
    ev = parse_event_plain(frame.body)
    key = ev.key
    if ev.name in ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE"):
        key += ":" + ev.get("Application", "")
    names = tuple(k for k, _ in ev.headers if not k.startswith("variable_"))
    return key, names, any(k.startswith("variable_") for k, _ in ev.headers), ev.get("Channel-Name", "")


def reply_shape(frame: Frame) -> str:
    """A reply normalised for comparison: uuids replaced, api bodies included."""
    if frame.content_type == "api/response":
        text = "api:" + frame.body.decode("utf-8", "replace")
    else:
        text = f"{frame.content_type}:{frame.get('Reply-Text', '')}"
        if frame.get("Job-UUID"):
            text += " +Job-UUID"
    return UUID_RE.sub("<uuid>", text)


class RawEsl:
    """Connects, records every frame (and the raw bytes), lets tests wait on frames."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.raw = bytearray()
        self.frames: List[Frame] = []
        self.arrival: List[float] = []  # monotonic arrival time of each frame
        self.closed = Event()
        self._changed = Event()
        self._reader = FrameReader()
        self._g = gevent.spawn(self._read)

    def _read(self) -> None:
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.raw += data
                new = list(self._reader.feed(data))
                self.frames.extend(new)
                self.arrival.extend([time.monotonic()] * len(new))
                self._changed.set()
        except OSError:
            pass
        finally:
            self.closed.set()
            self._changed.set()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def wait_for(self, pred: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        with gevent.Timeout(timeout, AssertionError(f"timed out waiting for {what}; frames so far: "
                                                    f"{[f.content_type for f in self.frames][-10:]}")):
            while not pred():
                self._changed.clear()
                if pred():
                    return
                if self.closed.is_set():
                    if pred():
                        return
                    raise AssertionError(f"connection closed while waiting for {what}")
                self._changed.wait()

    @property
    def replies(self) -> List[Frame]:
        return [f for f in self.frames if not is_event(f) and f.content_type != "auth/request"]

    @property
    def events(self) -> List[Frame]:
        return [f for f in self.frames if is_event(f)]

    def command(self, text: str, timeout: float = 5.0) -> Frame:
        n = len(self.replies)
        self.send(text.encode() + b"\n\n")
        self.wait_for(lambda: len(self.replies) > n, timeout, f"reply to {text!r}")
        return self.replies[n]

    def wait_event(self, pred: Callable[[Frame], bool], timeout: float = 5.0, what: str = "event") -> Frame:
        found: List[Frame] = []

        def check() -> bool:
            for f in self.events:
                if pred(f):
                    found.append(f)
                    return True
            return False

        self.wait_for(check, timeout, what)
        return found[0]

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        self._g.kill(block=False)


@dataclass
class Window:
    """One sent chunk of a capture and what FreeSWITCH sent until the next chunk."""

    data: bytes
    replies: int
    events: int


def windows(name: str, conn: int = 1) -> List[Window]:
    """Split a single-connection capture into per-command windows (by arrival order in NAME.txt)."""
    text = (traces_dir() / f"{name}.txt").read_text()
    sent = iter([s for s in trace_sent(name) if s[1] == conn])
    out: List[Window] = []
    for line in text.splitlines():
        if line.startswith(">>> ") and f"conn{conn} SENT" in line:
            out.append(Window(next(sent)[2], 0, 0))
        elif line.startswith("<<< ") and out:
            m = re.match(r"^<<< \S+ conn\d+ bytes \[\d+, \d+\) (\S+)", line)
            kind = m.group(1) if m else ""
            if kind == "EVENT" and any(f"EVENT {n}" in line for n in IGNORED_EVENTS):
                continue  # timer-driven, not reproduced
            if kind in ("EVENT", "text/event-json", "text/event-xml"):
                out[-1].events += 1
            elif kind not in ("auth/request",):
                out[-1].replies += 1
    return out


def window_events(name: str, conn: int = 1) -> List[List[Frame]]:
    """The captured event frames that arrived in each window of ``windows(name)``."""
    evs = [f for f in trace_frames(name) if is_event(f)
           and not (f.content_type == "text/event-plain" and parse_event_plain(f.body).name in IGNORED_EVENTS)]
    out, i = [], 0
    for w in windows(name, conn):
        out.append(evs[i:i + w.events])
        i += w.events
    return out


class WsPeer:
    """A tiny mod_audio_fork WebSocket server (websockets' sync API, run in a greenlet)."""

    def __init__(self, on_connect: Optional[Callable] = None) -> None:
        from websockets.sync.server import serve

        from tests.ws_helpers import serve_in_greenlet

        self.connections: list = []
        self.texts: List[Tuple[str, str]] = []  # (path, text)
        self.binary_bytes = 0
        self.connected = Event()
        self._text_evt = Event()
        self.closed_at: List[float] = []
        self.on_connect = on_connect
        self._server = serve(self._handler, "127.0.0.1", 0, subprotocols=["audio.drachtio.org"])
        self.port = self._server.socket.getsockname()[1]
        self._g = serve_in_greenlet(self._server)

    def _handler(self, ws) -> None:
        self.connections.append(ws)
        self.connected.set()
        first = True
        try:
            for msg in ws:
                if isinstance(msg, str):
                    self.texts.append((ws.request.path, msg))
                    self._text_evt.set()
                    if first and self.on_connect:  # called once the metadata frame has arrived
                        gevent.spawn(self.on_connect, ws)
                    first = False
                else:
                    self.binary_bytes += len(msg)
        except Exception:
            pass
        finally:
            self.closed_at.append(time.monotonic())

    def wait_texts(self, n: int, timeout: float = 5.0) -> None:
        with gevent.Timeout(timeout, AssertionError(f"WS peer got {len(self.texts)} texts, wanted {n}")):
            while len(self.texts) < n:
                self._text_evt.clear()
                self._text_evt.wait()

    def close(self) -> None:
        self._server.shutdown()
        self._g.kill(block=False)
