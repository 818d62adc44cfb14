"""The WebSocket server mod_audio_fork streams call audio to.

FreeSWITCH connects to ``ws://<worker>:<port>/call/<uuid>`` with the subprotocol
``audio.drachtio.org`` (optionally HTTP Basic auth), sends the metadata as its first text
frame and then raw L16LE binary frames.  Everything that can be refused is refused at the
upgrade (401 / 404 / 400 / the owner's precheck), so a refused fork shows up in FreeSWITCH as
``mod_audio_fork::connect_failed`` rather than as a half-open call.

Runs websockets' *sync* server under gevent's monkey patching: its per-connection threads are
greenlets, so one handler per call can block freely.  Our own accept loop (``fork_listener``)
replaces ``serve_forever`` and every socket passes a ``ConnectionGuard`` (caps per server and
per address); a connection must send its first frame within ``first_frame_timeout``.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import logging
import threading
from typing import Any, Callable, Iterator, Optional, Tuple
from urllib.parse import urlsplit

import gevent
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.sync.server import Server, ServerConnection, serve
from websockets.typing import Subprotocol

from voiceagent.observability.log_throttle import LogThrottle
from voiceagent.observability.logs import call_id_var
from voiceagent.telephony import forkwire
from voiceagent.telephony.call_ids import is_call_uuid
from voiceagent.telephony.fork_guard import ConnectionGuard, Slot
from voiceagent.telephony.fork_listener import AcceptLoop, reporting_connection
from voiceagent.telephony.fork_messages import Audio, ForkClosed, Message, Metadata, Text

__all__ = ["Audio", "ForkClosed", "ForkConnection", "ForkServer", "Message", "Metadata", "Text"]

log = logging.getLogger(__name__)

PrecheckResult = Optional[Tuple[int, str]]


def _parse_rate(value: Any, default: int, call_uuid: str, throttle: LogThrottle) -> int:
    try:
        rate = int(value)
        if str(value).strip() != str(rate) or not 1000 <= rate <= 192000:
            raise ValueError
        return rate
    except (TypeError, ValueError):
        throttle.log("bad_rate", logging.WARNING, "fork metadata sampleRate %r is not a sample rate; using %d",
                     str(value)[:40], default, extra={"call_id": call_uuid})
        return default


def _remote_of(ws: Any) -> str:
    try:
        addr = ws.remote_address
    except OSError:  # the server closed the socket already
        return "?"
    return f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) and len(addr) >= 2 else str(addr)


class ForkConnection:
    """One mod_audio_fork media bug connected to us."""

    def __init__(self, ws: ServerConnection, call_uuid: str, default_sample_rate: int,
                 max_metadata_bytes: int, *, slot: Optional[Slot] = None, first_frame_timeout: Optional[float] = None,
                 authenticated: bool = False, throttle: Optional[LogThrottle] = None,
                 on_established: Optional[Callable[[Slot], None]] = None) -> None:
        self._ws = ws
        self.call_uuid = call_uuid
        # the address recorded at accept(): the socket may already be closed under us (EBADF)
        self.remote = slot.remote if slot is not None else _remote_of(ws)
        request = getattr(ws, "request", None)
        self.path = request.path if request else ""
        self.authenticated = authenticated  # the upgrade carried valid Basic credentials
        self._slot = slot
        self._first_frame_timeout = first_frame_timeout
        self._throttle = throttle or LogThrottle(log)
        self._on_established = on_established
        self.established = False
        self.metadata: dict = {}
        self.sample_rate = default_sample_rate
        self._default_rate = default_sample_rate
        self._max_metadata = max_metadata_bytes
        self._seen_text = False
        self._seen_audio = False
        self._odd_frames = 0
        self.frames_received = 0
        self._greenlet = gevent.getcurrent()

    # ------------------------------------------------------------------ state
    @property
    def closed(self) -> bool:
        return self._ws.protocol.state in (State.CLOSING, State.CLOSED)

    @property
    def close_code(self) -> Optional[int]:
        return self._ws.close_code

    @property
    def close_reason(self) -> Optional[str]:
        return self._ws.close_reason

    def _log(self, level: int, msg: str, *args: Any) -> None:
        log.log(level, msg, *args, extra={"call_id": self.call_uuid})

    def _life(self, level: int, msg: str, *args: Any) -> None:
        """Lifecycle lines of a fork that never carried a confirmed call are DEBUG (floods are not news)."""
        self._log(level if self.established else logging.DEBUG, msg, *args)

    def mark_established(self) -> None:
        """This fork carries a call FreeSWITCH confirmed: the connection caps never drop it."""
        if self.established:
            return
        self.established = True
        if self._slot is not None and self._on_established is not None:
            self._on_established(self._slot)

    # ------------------------------------------------------------------ receiving
    def messages(self) -> Iterator[Message]:
        """Frames as they arrive; ends when the peer (or we) close the connection.

        Call from one greenlet only (websockets forbids concurrent receives).
        """
        first = True
        while True:
            try:
                # mod_audio_fork writes the metadata (or audio) at once; a peer that sends nothing is not one
                msg = self._ws.recv(timeout=self._first_frame_timeout if first else None)
            except TimeoutError:
                self._throttle.log("no_metadata", logging.WARNING,
                                   "fork from %s sent nothing within %.1fs of the upgrade: closed",
                                   self.remote, self._first_frame_timeout, extra={"call_id": self.call_uuid})
                self.close(1008, "no metadata")
                return
            except ConnectionClosedOK:
                self._life(logging.INFO, "fork closed (code %s %r)", self.close_code, self.close_reason or "")
                return
            except ConnectionClosed as exc:
                rcvd = exc.rcvd.code if exc.rcvd else None
                sent = exc.sent.code if exc.sent else None
                if sent == 1009:
                    self._log(logging.WARNING, "fork frame larger than the limit; closed with 1009")
                else:
                    self._life(logging.WARNING, "fork connection lost (received close %s, sent close %s)", rcvd, sent)
                return
            first = False
            if isinstance(msg, str):
                yield from self._on_text(msg)
            else:
                audio = self._on_binary(msg)
                if audio is not None:
                    yield audio

    def _on_text(self, text: str) -> Iterator[Message]:
        # mod_audio_fork writes the metadata before any audio; a first text after audio is a
        # send_text on a fork started without metadata.
        if not self._seen_text and not self._seen_audio:
            self._seen_text = True
            parsed = forkwire.parse_metadata(text, self._max_metadata)
            if parsed.error:
                self._throttle.log("bad_metadata", logging.WARNING, "bad fork metadata from %s: %s", self.remote,
                                   parsed.error, extra={"call_id": self.call_uuid})
            else:
                self.metadata = parsed.metadata
                if "sampleRate" in parsed.metadata:
                    self.sample_rate = _parse_rate(parsed.metadata["sampleRate"], self._default_rate, self.call_uuid,
                                                   self._throttle)
                yield Metadata(parsed.metadata)
            if parsed.extra:
                yield Text(parsed.extra, text)
            return
        self._seen_text = True
        try:
            values = forkwire.parse_json_values(text)
        except ValueError as exc:
            self._throttle.log("bad_text", logging.WARNING, "fork text frame is not JSON (%s): %r", exc, text[:80],
                               extra={"call_id": self.call_uuid})
            return
        yield Text(values, text)

    def _on_binary(self, data: bytes) -> Optional[Audio]:
        self._seen_audio = True
        if not data:
            # graceful-shutdown: a zero-length frame, then no more audio.
            self._life(logging.INFO, "fork sent an empty audio frame (graceful shutdown)")
            return None
        if len(data) % 2:
            self._odd_frames += 1
            if self._odd_frames == 1 or self._odd_frames % 100 == 0:
                self._log(logging.WARNING, "dropped audio frame of odd length %d (%d so far)",
                          len(data), self._odd_frames)
            return None
        self.frames_received += 1
        return Audio(bytes(data), self.sample_rate)

    # ------------------------------------------------------------------ sending (any greenlet)
    def _send(self, text: str) -> None:
        try:
            self._ws.send(text)
        except ConnectionClosed as exc:
            raise ForkClosed(f"fork {self.call_uuid} is closed") from exc

    def send_play_audio(self, audio: bytes, *, sample_rate: int, content_type: str = "wav",
                        text: Optional[str] = None) -> None:
        """Ask FreeSWITCH to write ``audio`` to a temp file (it raises ``::play_audio``).

        For ``wav``, plain L16 PCM is wrapped in a WAV header; a complete WAV (RIFF) is sent as is.
        """
        if content_type in ("wav", "wave") and not audio.startswith(b"RIFF"):
            audio = forkwire.wav_encode(audio, sample_rate)
        self._send(forkwire.play_audio_message(audio, sample_rate=sample_rate, content_type=content_type, text=text))

    def send_kill_audio(self) -> None:
        self._send(forkwire.kill_audio_message())

    def send_disconnect(self) -> None:
        """mod_audio_fork only raises ``::disconnect``; the call and the socket stay up."""
        self._send(forkwire.disconnect_message())

    def close(self, code: int = 1000, reason: str = "") -> None:
        try:
            self._ws.close(code, reason)
        except Exception:  # closing an already broken socket
            log.debug("fork close failed", exc_info=True, extra={"call_id": self.call_uuid})


class ForkServer:
    def __init__(self, host: str, port: int, handler: Callable[[ForkConnection], None], *,
                 auth: Optional[Tuple[str, str]] = None, max_frame_bytes: int = 65536,
                 max_metadata_bytes: int = forkwire.MAX_METADATA_BYTES,
                 precheck: Optional[Callable[[str], PrecheckResult]] = None, path_prefix: str = "/call/",
                 default_sample_rate: int = 16000, max_connections: int = 1000, max_pending_per_address: int = 64,
                 handshake_timeout: float = 10.0, first_frame_timeout: Optional[float] = 5.0,
                 log_interval: float = 10.0, reuse_port: bool = False) -> None:
        self.host = host
        self._reuse_port = reuse_port  # SO_REUSEPORT: other workers' servers listen on the same port
        self._requested_port = port
        self._handler = handler
        self._auth = (auth[0].encode(), auth[1].encode()) if auth else None
        self._max_frame = max_frame_bytes
        self._max_metadata = max_metadata_bytes
        self._precheck = precheck
        self._prefix = path_prefix
        self._default_rate = default_sample_rate
        self._server: Optional[Server] = None
        self._accept: Optional[AcceptLoop] = None
        self._handshake_timeout = handshake_timeout
        self._first_frame_timeout = first_frame_timeout
        self.guard = ConnectionGuard(max_connections, max_pending_per_address)
        self.throttle = LogThrottle(log, log_interval)
        self._connections: set[ForkConnection] = set()
        self._lock = threading.Lock()
        self.port = 0
        self.url = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._server = serve(
            self._run_connection, self.host, self._requested_port,
            subprotocols=[Subprotocol(forkwire.SUBPROTOCOL)],
            compression=None,  # mod_audio_fork offers no extensions
            process_request=self._process_request,
            max_size=self._max_frame,
            server_header="voiceagent",
            logger=logging.getLogger("websockets.server"),
            open_timeout=self._handshake_timeout,
            backlog=512,  # a burst of calls (or a flood) must not overflow the kernel's accept queue
            reuse_port=self._reuse_port,
            create_connection=reporting_connection(lambda: self._accept),
        )
        self.port = self._server.socket.getsockname()[1]
        self.url = f"ws://{self.host}:{self.port}"
        self._accept = AcceptLoop(self._server, self.guard, self.throttle)
        self._accept.start()
        log.info("fork server listening on %s", self.url)

    @property
    def serving(self) -> bool:
        """False once the server cannot take new forks (stopped, listening socket gone, out of descriptors)."""
        return self._server is not None and self._accept is not None and self._accept.serving

    def health(self) -> dict:
        base = self._accept.health() if self._accept is not None else {"serving": False}
        return {**base, "serving": self.serving}

    def _abort_handshakes(self) -> None:
        """Sockets still in their upgrade would hold shutdown() for the whole handshake timeout."""
        for slot in self.guard.pending_slots():
            if not slot.upgraded:
                slot.abort()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, close every connection (1001) and wait for the handlers."""
        if self._server is None:
            return
        server, self._server = self._server, None
        if self._accept is not None:
            self._accept.stopping()
        closer = gevent.spawn(server.shutdown)
        self._abort_handshakes()
        closer.join(min(0.2, timeout))
        self._abort_handshakes()  # any accepted between the first pass and the listening socket closing
        closer.join(timeout)
        if not closer.dead:
            with self._lock:
                stuck = list(self._connections)
            log.warning("fork server stop: %d handler(s) did not return in %.1fs; killing them", len(stuck), timeout)
            for conn in stuck:
                conn._greenlet.kill(block=False)
            closer.join(1.0)
        if self._accept is not None:
            self._accept.join(1.0)

    @property
    def connections(self) -> list[ForkConnection]:
        with self._lock:
            return list(self._connections)

    # ------------------------------------------------------------------ upgrade checks
    def _call_uuid(self, path: str) -> Optional[str]:
        p = urlsplit(path).path
        if not p.startswith(self._prefix):
            return None
        rest = p[len(self._prefix):].rstrip("/")
        return rest if is_call_uuid(rest) else None

    def _authorized(self, headers: Headers) -> bool:
        assert self._auth is not None
        value = headers.get("Authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, pw = base64.b64decode(token.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # Compare both parts every time so timing says nothing about which one was wrong.
        ok_user = hmac.compare_digest(user, self._auth[0])
        ok_pw = hmac.compare_digest(pw, self._auth[1])
        return bool(sep) and ok_user and ok_pw

    def _remote(self, ws: ServerConnection) -> str:
        slot = self.guard.slot_for(ws.socket)
        return slot.remote if slot is not None else _remote_of(ws)

    def _process_request(self, ws: ServerConnection, request: Request) -> Optional[Response]:
        remote = self._remote(ws)
        call_uuid = self._call_uuid(request.path) or ""
        extra = {"call_id": call_uuid}
        path = request.path[:120]
        if self._auth is not None and not self._authorized(request.headers):
            self.throttle.log("401", logging.WARNING, "fork upgrade from %s for %r refused: bad or missing credentials",
                              remote, path, extra=extra)
            resp = ws.respond(401, "Unauthorized\n")
            resp.headers["WWW-Authenticate"] = 'Basic realm="voiceagent", charset="UTF-8"'
            return resp
        if not call_uuid:
            self.throttle.log("404", logging.WARNING, "fork upgrade from %s refused: path %r is not %s<uuid>",
                              remote, path, self._prefix)
            return ws.respond(404, "Not Found\n")
        offered = [p.strip() for h in request.headers.get_all("Sec-WebSocket-Protocol") for p in h.split(",")]
        if forkwire.SUBPROTOCOL not in offered:
            self.throttle.log("400", logging.WARNING,
                              "fork upgrade from %s refused: subprotocol %s not offered (got %r)",
                              remote, forkwire.SUBPROTOCOL, offered[:4], extra=extra)
            return ws.respond(400, f"Subprotocol {forkwire.SUBPROTOCOL} required\n")
        if self._precheck is not None:
            try:
                verdict = self._precheck(call_uuid)
            except Exception:
                log.exception("fork precheck failed; refusing with 503", extra=extra)
                verdict = (503, "Service Unavailable")
            if verdict is not None:
                status, text = verdict
                self.throttle.log(f"precheck{status}", logging.INFO, "fork upgrade from %s refused by precheck: %d %s",
                                  remote, status, text, extra=extra)
                return ws.respond(status, text if text.endswith("\n") else text + "\n")
        return None

    # ------------------------------------------------------------------ per connection
    def _run_connection(self, ws: ServerConnection) -> None:
        call_uuid = self._call_uuid(ws.request.path) if ws.request else None
        call_id_var.set(call_uuid or "")
        slot = self.guard.slot_for(ws.socket)
        if slot is not None:
            slot.upgraded = True
        conn = ForkConnection(ws, call_uuid or "", self._default_rate, self._max_metadata, slot=slot,
                              first_frame_timeout=self._first_frame_timeout, authenticated=self._auth is not None,
                              throttle=self.throttle, on_established=self.guard.establish)
        log.debug("fork connected from %s", conn.remote, extra={"call_id": conn.call_uuid})
        with self._lock:
            self._connections.add(conn)
        try:
            self._handler(conn)
        except gevent.GreenletExit:
            log.warning("fork handler killed", extra={"call_id": conn.call_uuid})
        except Exception:
            log.exception("fork handler failed", extra={"call_id": conn.call_uuid})
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()
