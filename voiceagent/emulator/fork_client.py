"""The FreeSWITCH side of one mod_audio_fork media bug, as the traces show it behaves.

Handshake exactly as libwebsockets 4.1.6 sends it (Host without the port, Origin
``http://<host>``, subprotocol ``audio.drachtio.org``, no extensions, Basic auth appended last),
the metadata as the first text frame, then L16LE frames paced by a monotonic clock.  Server
text frames become the CUSTOM events FreeSWITCH would fire; playAudio content is written to
``<temp_dir>/<uuid>_<n>.tmp.<ext>`` and deleted when the fork ends.  No reconnect, ever.
"""
from __future__ import annotations

import base64
import binascii
import itertools
import logging
import os
import threading
import time
from typing import Callable, List, Optional, Tuple

import gevent
import numpy as np
from gevent.event import Event
from websockets.datastructures import Headers
from websockets.exceptions import (ConnectionClosed, InvalidHandshake, InvalidHeaderValue, InvalidStatus,
                                   NegotiationError)
from websockets.headers import build_authorization_basic
from websockets.http11 import Request
from websockets.protocol import CONNECTING
from websockets.sync.client import ClientConnection, connect as ws_connect

from voiceagent.emulator.caller_audio import CallerAudio
from voiceagent.telephony import forkwire

log = logging.getLogger(__name__)

OnEvent = Callable[[str, Optional[bytes]], None]

# mod_audio_fork numbers its temp files with one counter for the whole module.
_file_counter = itertools.count()


class _LwsClientConnection(ClientConnection):
    """Sends the upgrade request byte for byte like libwebsockets 4.1.6 (traces, obs. 9)."""

    auth_header: Optional[str] = None

    def handshake(self, additional_headers=None, user_agent_header=None, timeout=None) -> None:
        uri = self.protocol.uri
        headers = Headers()
        headers["Pragma"] = "no-cache"
        headers["Cache-Control"] = "no-cache"
        headers["Host"] = uri.host  # never the port
        headers["Origin"] = f"http://{uri.host}"
        headers["Upgrade"] = "websocket"
        headers["Connection"] = "Upgrade"
        headers["Sec-WebSocket-Key"] = self.protocol.key
        headers["Sec-WebSocket-Protocol"] = forkwire.SUBPROTOCOL
        headers["Sec-WebSocket-Version"] = "13"
        if self.auth_header:
            # mod_audio_fork adds it from lws' APPEND_HANDSHAKE_HEADER callback, i.e. last.
            headers["Authorization"] = self.auth_header
        self.request = Request(uri.resource_name, headers)
        with self.send_context(expected_state=CONNECTING):
            self.protocol.send_request(self.request)
        if not self.response_rcvd.wait(timeout):
            raise TimeoutError("timed out while waiting for handshake response")
        if self.protocol.handshake_exc is not None:
            raise self.protocol.handshake_exc


def _failure_reason(exc: BaseException) -> str:
    """The libwebsockets error text mod_audio_fork puts in connect_failed."""
    if isinstance(exc, InvalidStatus):
        return forkwire.REASON_UNAUTHORIZED if exc.response.status_code == 401 else forkwire.REASON_NOT_101
    if isinstance(exc, InvalidHeaderValue) and "accept" in str(exc.name).lower():
        return forkwire.REASON_ACCEPT_HASH
    if isinstance(exc, NegotiationError):
        return forkwire.REASON_PROTOCOL
    return forkwire.REASON_UNABLE_TO_CONNECT


class ForkClient:
    """One ``uuid_audio_fork <uuid> start <url> <mix> <rate> [bugname] [metadata]``."""

    def __init__(self, url: str, *, call_uuid: str, bugname: str = "audio_fork", metadata: Optional[str] = None,
                 sample_rate: int = 16000, mix: str = "mono", auth: Optional[Tuple[str, str]] = None,
                 audio: CallerAudio, speed: float = 1.0, temp_dir: str, on_event: OnEvent, frame_ms: int = 20,
                 played_audio: Optional[Callable[[int], Optional[bytes]]] = None) -> None:
        if mix not in ("mono", "mixed", "stereo"):
            raise ValueError(f"mix must be mono, mixed or stereo, not {mix!r}")
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.url = url
        self.call_uuid = call_uuid
        self.bugname = bugname
        self.metadata = metadata
        self.sample_rate = sample_rate
        self.mix = mix
        self.auth = auth
        self.audio = audio
        self.speed = speed
        self.temp_dir = temp_dir
        self.on_event = on_event
        self.frame_ms = frame_ms
        self.played_audio = played_audio
        self.connected = False
        self.frames_sent = 0
        self.paused = False
        self.temp_files: List[str] = []
        self._ws: Optional[ClientConnection] = None
        self._greenlet: Optional[gevent.Greenlet] = None
        self._ending = Event()           # stop/hangup requested
        self._final_text: Optional[str] = None
        self._local_close = False
        self._no_more_audio = False
        self._lock = threading.Lock()
        self.done = Event()              # the fork is over (closed, failed, or stopped)

    # ------------------------------------------------------------------ control (any greenlet)
    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def send_text(self, text: str) -> None:
        """``send_text``: silently dropped when not connected, as FreeSWITCH does."""
        ws = self._ws
        if ws is None or not self.connected:
            log.info("fork %s: send_text while not connected, dropped", self.bugname, extra={"call_id": self.call_uuid})
            return
        try:
            ws.send(text)
        except ConnectionClosed:
            log.info("fork %s: send_text after close, dropped", self.bugname, extra={"call_id": self.call_uuid})

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def graceful_shutdown(self) -> None:
        """A zero-length binary frame, then no more audio; the server closes when it is done."""
        self._no_more_audio = True
        ws = self._ws
        if ws is not None and self.connected:
            try:
                ws.send(b"")
            except ConnectionClosed:
                pass

    def stop(self, final_text: Optional[str] = None) -> None:
        """``uuid_audio_fork stop``: final text (if any), Close 1000 without reason, temp files deleted."""
        self._final_text = final_text
        self._end()

    def hangup(self) -> None:
        """The channel hung up: Close 1000, no final text."""
        self._final_text = None
        self._end()

    def _end(self) -> None:
        self._ending.set()
        if self.done.is_set() or self._greenlet is None:
            # Already over (server closed, connect failed) or never started: the bug goes away now.
            self._delete_temp_files()

    def join(self, timeout: Optional[float] = None) -> bool:
        return self.done.wait(timeout)

    # ------------------------------------------------------------------ internals
    def _log(self, level: int, msg: str, *args) -> None:
        log.log(level, "fork %s: " + msg, self.bugname, *args, extra={"call_id": self.call_uuid})

    def _emit(self, name: str, body: Optional[str]) -> None:
        try:
            self.on_event(name, body.encode("utf-8") if body is not None else None)
        except Exception:
            log.exception("fork %s: on_event(%s) failed", self.bugname, name, extra={"call_id": self.call_uuid})

    def _connect(self) -> ClientConnection:
        conn_cls = type("_ForkWs", (_LwsClientConnection,), {
            "auth_header": build_authorization_basic(*self.auth) if self.auth else None,
        })
        return ws_connect(
            self.url, subprotocols=[forkwire.SUBPROTOCOL], compression=None, proxy=None,
            user_agent_header=None, open_timeout=10,  # lws' network timeout
            ping_interval=None, max_size=None,  # playAudio frames can be hundreds of KB
            close_timeout=5, create_connection=conn_cls, legacy=True,
        )

    def _run(self) -> None:
        try:
            try:
                ws = self._connect()
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                reason = _failure_reason(exc)
                self._log(logging.INFO, "connect to %s failed: %s (%s)", self.url, reason, exc)
                self._emit(forkwire.EVENT_CONNECT_FAILED, forkwire.compact_json({"reason": reason}))
                return
            self._ws = ws
            self.connected = True
            # The traces show the server holding the metadata before ESL delivers ::connect.
            if self.metadata:
                ws.send(self.metadata)
            self._emit(forkwire.EVENT_CONNECT, None)
            reader = gevent.spawn(self._read_loop, ws)
            try:
                self._send_loop(ws, reader)
            finally:
                if self._ending.is_set() and not reader.dead:
                    self._close(ws)
                reader.join(6)
                reader.kill()
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("fork %s failed", self.bugname, extra={"call_id": self.call_uuid})
        finally:
            self.connected = False
            if self._ending.is_set():
                self._delete_temp_files()
            self.done.set()

    def _close(self, ws: ClientConnection) -> None:
        self._local_close = True
        try:
            if self._final_text:
                ws.send(self._final_text)
            ws.close(1000)  # payload 03e8, no reason
        except ConnectionClosed:
            pass

    def _send_loop(self, ws: ClientConnection, reader: gevent.Greenlet) -> None:
        n = self.sample_rate * self.frame_ms // 1000
        interval = self.frame_ms / 1000.0 / self.speed
        t0 = time.monotonic()
        k = 0
        while not reader.dead:
            k += 1
            # Deadline from the start, so pacing never drifts.
            delay = t0 + k * interval - time.monotonic()
            if self._ending.wait(max(0.0, delay)):
                return
            if reader.dead:
                return
            frame = self._next_frame(n)
            if frame is None or self.paused or self._no_more_audio:
                continue
            try:
                ws.send(frame)
            except ConnectionClosed:
                return
            self.frames_sent += 1

    def _next_frame(self, n: int) -> Optional[bytes]:
        caller = self.audio.read(n)
        if self.mix == "mono":
            return caller
        if self.played_audio is None:
            played = b"\x00" * (2 * n)
        else:
            played = self.played_audio(n)
            if not played:
                # Discrepancy 10: stereo/mixed forks send nothing while FS writes no audio.
                return None
            played = played[:2 * n].ljust(2 * n, b"\x00")
        left = np.frombuffer(caller, dtype="<i2")
        right = np.frombuffer(played, dtype="<i2")
        if self.mix == "mixed":
            return np.clip(left.astype(np.int32) + right, -32768, 32767).astype("<i2").tobytes()
        out = np.empty(2 * n, dtype="<i2")
        out[0::2], out[1::2] = left, right
        return out.tobytes()

    def _read_loop(self, ws: ClientConnection) -> None:
        try:
            for msg in ws:
                if isinstance(msg, str):
                    self._on_server_text(msg)
                # binary frames from the server are discarded, as mod_audio_fork does
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("fork %s reader failed", self.bugname, extra={"call_id": self.call_uuid})
        self.connected = False
        if not self._local_close:
            self._log(logging.INFO, "server closed the fork (code %s)", ws.close_code)
            self._emit(forkwire.EVENT_DISCONNECT, None)

    def _on_server_text(self, text: str) -> None:
        msg = forkwire.classify_server_text(text)
        if msg.problem:
            self._log(logging.WARNING, "%s", msg.problem)
        if msg.event is None:
            return
        if msg.play is not None:
            body = self._write_play_file(msg.play)
            if body is None:
                return
            self._emit(msg.event, body)
            return
        self._emit(msg.event, msg.body)

    def _write_play_file(self, data: dict) -> Optional[str]:
        try:
            content = base64.b64decode(data["audioContent"], validate=False)
        except (binascii.Error, ValueError) as exc:
            self._log(logging.WARNING, "playAudio content is not base64: %s", exc)
            return None
        ext = forkwire.play_audio_file_ext(data["audioContentType"], data.get("sampleRate"))
        path = os.path.join(self.temp_dir, f"{self.call_uuid}_{next(_file_counter)}.tmp.{ext}")
        try:
            with open(path, "wb") as f:
                f.write(content)
        except OSError as exc:
            self._log(logging.WARNING, "cannot write playAudio file %s: %s", path, exc)
            return None
        with self._lock:
            self.temp_files.append(path)
        return forkwire.play_audio_event_body(data, path)

    def _delete_temp_files(self) -> None:
        with self._lock:
            files, self.temp_files = self.temp_files, []
        for path in files:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                self._log(logging.WARNING, "cannot delete %s: %s", path, exc)
