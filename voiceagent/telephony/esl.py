"""One long-lived inbound Event Socket connection per FreeSWITCH node.

Built on greenswitch's ``InboundESL`` (connect, greeting wait, ``auth``), with the parts of
greenswitch 0.0.19 that can hurt a call replaced (protocols.md C1):

* its event parser glues bodies onto headers and URL-decodes them (defect 1) and its
  ``event json`` path kills the reader (defect 2): our reader frames bytes with
  :class:`eslwire.FrameReader` and parses plain events with :func:`eslwire.parse_event_plain`,
  so BACKGROUND_JOB results and mod_audio_fork JSON bodies arrive intact;
* its ``send`` has no timeout, uses ``sock.send`` and leaves pending commands hanging when
  the socket drops (defects 3, 6): ours is timed, writes with ``sendall`` under a lock (so
  the reply FIFO matches the write order), and fails every pending command when the
  connection is lost;
* its readline loop can spin on a half-dead socket (defect 4): ours treats EOF and any socket
  error as a lost connection, and probes an idle connection with a timed command;
* its dispatcher runs handlers in the reader's shadow with a 1 s polling loop: ours matches
  replies and BACKGROUND_JOB results *in the reader* and runs handlers from a queue in one
  long-lived greenlet per node, so a failing handler never delays a reply nor stops dispatch.

A flood of events must not take the process with it: the queue is bounded by back-pressure
(:mod:`eslqueue`: the reader stops reading when it is full, TCP pushes back on FreeSWITCH), and
reader and dispatcher yield to the other greenlets every few frames, because a gevent ``recv``
with data waiting returns without ever switching (one flooding node once delayed another
node's call by 8.8 s and the heartbeat by 11 s).

:class:`EslConnection` adds reconnect with capped exponential backoff (reset only by a
connection that stayed up ``healthy_after`` seconds, so a server that accepts and drops at
once gets a few reconnects, not thousands), re-subscription and filter restore, and ``bgapi``
correlation by a client-chosen ``Job-UUID``.
"""
from __future__ import annotations

import collections
import logging
import random
import time
import uuid as uuidlib
from dataclasses import dataclass
from typing import Callable, Deque, Dict, Iterable, List, Optional, Sequence, Tuple

import gevent
import gevent.event
import gevent.lock
from gevent import socket
from greenswitch import esl as gs

from voiceagent.observability.log_throttle import LogThrottle
from voiceagent.telephony import eslwire
from voiceagent.telephony.eslqueue import EventQueue

log = logging.getLogger(__name__)

#: Frames the reader (and events the dispatcher) handles before letting other greenlets run.
_BATCH = 64
#: Reconnect-cycle log lines (connected, lost, retrying) per node at most this often, seconds.
_RECONNECT_LOG_INTERVAL = 10.0
#: An event whose handlers together take longer than this gets a warning, seconds.
_SLOW_HANDLER_S = 0.5

#: mod_audio_fork's CUSTOM subclasses (drachtio build, protocols.md B6).
FORK_SUBCLASSES: Tuple[str, ...] = (
    "mod_audio_fork::connect",
    "mod_audio_fork::connect_failed",
    "mod_audio_fork::disconnect",
    "mod_audio_fork::play_audio",
    "mod_audio_fork::kill_audio",
    "mod_audio_fork::buffer_overrun",
    "mod_audio_fork::error",
    "mod_audio_fork::json",
)

#: What the agent listens to. ``CUSTOM`` swallows every later token as a subclass, so plain
#: names come first (see :func:`subscription_command`).
DEFAULT_EVENTS: Tuple[str, ...] = (
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_PARK",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_DESTROY",
    "PLAYBACK_START",
    "PLAYBACK_STOP",
    "DTMF",
    "BACKGROUND_JOB",
    "MEDIA_BUG_START",
    "MEDIA_BUG_STOP",
    "CUSTOM",
) + FORK_SUBCLASSES

# Connection-level commands that would break this shared connection: ``myevents`` ties the
# socket to one channel (FS closes it at hangup), ``nixevent`` after ALL silently drops
# unreserved CUSTOM subclasses (traces discrepancy 13), ``noevents``/non-plain formats
# would starve the owners or break parsing, ``exit`` is stop()'s job.
_FORBIDDEN = ("myevents", "nixevent", "noevents", "event json", "event xml", "exit", "linger", "nolinger", "divert_events")


class EslError(Exception):
    """Base class of ESL client errors."""


class EslNotConnected(EslError, gs.NotConnectedError):
    """No usable connection to FreeSWITCH right now."""


class EslDisconnected(EslNotConnected):
    """The connection dropped while this command was waiting for its reply."""


class EslTimeout(EslError):
    """FreeSWITCH did not answer in time."""


class EslAuthError(EslError):
    """FreeSWITCH rejected the Event Socket password (or the ACL rejected us)."""


class CommandError(EslError):
    """FreeSWITCH answered ``-ERR ...`` (or ``-USAGE: ...``); ``reply`` holds its text."""

    def __init__(self, command: str, reply: str) -> None:
        self.command = command
        self.reply = reply.strip()
        super().__init__(f"{command.split(' ', 1)[0]!s}: {self.reply}")


@dataclass
class Reply:
    """A ``command/reply`` or ``api/response``.

    ``headers`` is a dict because greenswitch's ``authenticate`` reads
    ``reply.headers['Reply-Text']``; ``body`` is the raw api output.
    """

    headers: Dict[str, str]
    body: bytes = b""

    @property
    def reply_text(self) -> str:
        return self.headers.get("Reply-Text", "")

    @property
    def text(self) -> str:
        """Reply-Text for command replies, the decoded body for api responses."""
        if self.headers.get("Content-Type") == "api/response":
            return self.body.decode("utf-8", errors="replace")
        return self.reply_text

    data = text  # greenswitch's name


def subscription_command(events: Iterable[str]) -> str:
    """``event plain <names> CUSTOM <subclasses>``: every subclass after the one CUSTOM token."""
    names: List[str] = []
    subs: List[str] = []
    custom = False
    for ev in events:
        ev = ev.strip()
        if not ev:
            continue
        if any(c.isspace() for c in ev):
            raise ValueError(f"event name with whitespace: {ev!r}")
        if ev == "CUSTOM":
            custom = True
        elif "::" in ev:
            custom = True
            if ev not in subs:
                subs.append(ev)
        elif ev not in names:
            names.append(ev)
    if "BACKGROUND_JOB" not in names and "ALL" not in names:
        names.append("BACKGROUND_JOB")  # bgapi results depend on it
    parts = ["event plain"] + names
    if custom:
        parts += ["CUSTOM"] + subs
    return " ".join(parts)


def _bare(exc: object, node: str) -> str:
    """The error's text without its leading ``ESL <node>: `` (for lines that carry that prefix)."""
    text, prefix = str(exc), f"ESL {node}: "
    while text.startswith(prefix):
        text = text[len(prefix):]
    return text


def _check_one_line(text: str, what: str = "command") -> None:
    if "\n" in text or "\r" in text:
        raise ValueError(f"ESL {what} must be one line (no CR/LF): {text[:80]!r}")
    if not text.strip():
        raise ValueError(f"empty ESL {what}")


class _Protocol(gs.InboundESL):
    """One TCP connection: greenswitch's connect/auth, our reader and timed send.

    Not reusable: :class:`EslConnection` makes a new one for every (re)connect.
    """

    def __init__(self, owner: "EslConnection") -> None:
        super().__init__(owner.host, owner.port, owner.password, timeout=owner.connect_timeout)
        self._owner = owner
        self._reader = eslwire.FrameReader()
        self._write_lock = gevent.lock.Semaphore()
        self._pending: Deque[gevent.event.AsyncResult] = collections.deque()
        self.lost = gevent.event.Event()
        self.lost_reason = ""
        self.rejected = ""  # rude-rejection text, if any
        self.last_rx = time.monotonic()
        self.sock = None

    # greenswitch would also spawn its process_events poller; dispatch lives in EslConnection.
    def start_event_handlers(self) -> None:
        self._receive_events_greenlet = gevent.spawn(self.receive_events)

    def receive_events(self) -> None:
        """Replaces greenswitch's readline parser (defects 1, 2, 4)."""
        reason = "FreeSWITCH closed the connection"
        try:
            queue = getattr(self._owner, "_queue", None)  # the owner's EventQueue (back-pressure)
            while self._run:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.last_rx = time.monotonic()
                for n, frame in enumerate(self._reader.feed(data), 1):
                    self._on_frame(frame)
                    if n % _BATCH == 0:
                        gevent.sleep(0)  # recv with data waiting never switches: let the others run
                gevent.sleep(0)
                if queue is not None and queue.full:
                    self._owner._queue_paused()
                    queue.wait_room()  # back-pressure: stop reading until the handlers catch up
        except eslwire.ProtocolError as exc:
            reason = f"protocol error: {exc}"
            log.error("ESL %s: %s; dropping the connection", self._owner.node, reason)
        except gevent.GreenletExit:
            reason = "connection closed"
        except OSError as exc:
            reason = f"socket error: {exc}"
        except Exception as exc:  # never let the reader die silently
            reason = f"reader crashed: {exc!r}"
            log.exception("ESL %s: reader crashed", self._owner.node)
        finally:
            self.mark_lost(reason)

    def _on_frame(self, frame: eslwire.Frame) -> None:
        ctype = frame.content_type
        if ctype in ("command/reply", "api/response"):
            reply = Reply(dict(frame.headers), frame.body)
            if not self._pending:
                log.warning("ESL %s: reply with no command waiting, ignored: %r", self._owner.node, reply.text[:200])
                return
            self._pending.popleft().set(reply)
        elif ctype == "text/event-plain":
            try:
                event = eslwire.parse_event_plain(frame.body)
            except Exception as exc:
                log.error("ESL %s: unparsable event dropped (%s): %r", self._owner.node, exc, frame.body[:200])
                return
            self._owner._on_wire_event(event)
        elif ctype == "auth/request":
            self._auth_request_event.set()
        elif ctype == "text/disconnect-notice":
            log.info("ESL %s: disconnect notice: %s", self._owner.node, frame.body.decode("utf-8", "replace").strip())
            self.connected = False
            self._auth_request_event.set()
        elif ctype == "text/rude-rejection":
            self.rejected = frame.body.decode("utf-8", "replace").strip() or "rude rejection"
            log.error("ESL %s: FreeSWITCH refused us (ACL): %s", self._owner.node, self.rejected)
            self.connected = False
            self._auth_request_event.set()
        elif ctype in ("text/event-json", "text/event-xml"):
            log.warning("ESL %s: %s event ignored (we subscribe plain only)", self._owner.node, ctype)
        elif ctype != "log/data":
            log.warning("ESL %s: unknown message type %r ignored", self._owner.node, ctype)

    def mark_lost(self, reason: str) -> None:
        """Idempotent: close, fail every pending command, wake the supervisor."""
        if self.lost.is_set():
            return
        self.lost_reason = reason
        self.connected = False
        self._run = False
        self._auth_request_event.set()
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass
        sock_file = getattr(self, "sock_file", None)  # greenswitch's makefile(), unused by us
        if sock_file is not None:
            try:
                sock_file.close()
            except OSError:
                pass
        pending, self._pending = self._pending, collections.deque()
        for slot in pending:
            if not slot.ready():
                slot.set_exception(EslDisconnected(f"ESL {self._owner.node}: connection lost ({reason})"))
        self.lost.set()

    def send(self, data: str, timeout: Optional[float] = None) -> Reply:
        """Timed replacement for greenswitch's ``send`` (defects 3, 6).

        A timeout means the reply FIFO can no longer be trusted to line up (the late reply
        would be taken by the next command), so the connection is dropped and rebuilt.
        """
        if not self.connected or self.lost.is_set():
            raise EslNotConnected(f"ESL {self._owner.node}: not connected")
        timeout = self._owner.command_timeout if timeout is None else timeout
        raw = (data + "\n\n").encode("utf-8")
        slot = gevent.event.AsyncResult()
        what = data.split("\n", 1)[0][:120]
        written = False
        timer = gevent.Timeout(timeout)
        timer.start()
        try:
            with self._write_lock:
                self._pending.append(slot)
                self.sock.sendall(raw)
                written = True
            return slot.get()
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            self.mark_lost(f"no reply to {what!r} within {timeout:.1f}s")
            raise EslTimeout(f"ESL {self._owner.node}: no reply to {what!r} within {timeout:.1f}s") from None
        except OSError as exc:
            self.mark_lost(f"send failed: {exc}")
            raise EslDisconnected(f"ESL {self._owner.node}: send failed ({exc})") from None
        except BaseException:
            # Interrupted from outside (kill, a caller's own Timeout). A half-written command
            # corrupts the stream; a fully written one leaves its slot to absorb the reply.
            if not written:
                self.mark_lost("command write interrupted")
            raise
        finally:
            timer.close()

    def close(self, reason: str = "closed") -> None:
        self.mark_lost(reason)
        g = self._receive_events_greenlet
        if g is not None and not g.dead and g is not gevent.getcurrent():
            g.kill(block=False)


Handler = Callable[..., None]


class EslConnection:
    """A supervised inbound ESL connection to one FreeSWITCH node.

    Replies are FIFO and matched in the reader; events are queued and handed to the
    ``on_event`` handlers from one dispatcher greenlet, in wire order.  ``on_connected``
    handlers run (from the same queue, so after the old connection's events) after every
    connect + subscribe; ``on_disconnected`` handlers when a live connection is lost.
    Every handler gets ``(event)`` or ``(connection)``; exceptions are logged, never raised.
    """

    def __init__(
        self,
        node: str,
        host: str,
        port: int,
        password: str,
        *,
        command_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        reconnect_max_delay: float = 10.0,
        events: Sequence[str] = DEFAULT_EVENTS,
        bgapi_timeout: float = 90.0,
        keepalive_interval: float = 20.0,
        healthy_after: float = 30.0,
        max_queued_events: int = 2000,
    ) -> None:
        self.node = node
        self.host = host
        self.port = int(port)
        self.password = password
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self.reconnect_max_delay = reconnect_max_delay
        self.bgapi_timeout = bgapi_timeout
        self.keepalive_interval = keepalive_interval
        self.healthy_after = healthy_after
        self.max_queued_events = max_queued_events
        self._subscription = subscription_command(events)
        self._filters: List[Tuple[str, str]] = []
        self._event_handlers: List[Handler] = []
        self._connected_handlers: List[Handler] = []
        self._disconnected_handlers: List[Handler] = []
        self._jobs: Dict[str, Tuple[gevent.event.AsyncResult, str]] = {}
        self._queue = EventQueue(max_queued_events)
        self._log_throttle = LogThrottle(log, _RECONNECT_LOG_INTERVAL)
        self._proto: Optional[_Protocol] = None
        self._up = gevent.event.Event()
        self._stopping = gevent.event.Event()
        self._first = gevent.event.AsyncResult()
        self._supervisor: Optional[gevent.Greenlet] = None
        self._dispatcher: Optional[gevent.Greenlet] = None
        self.last_disconnect_reason = ""
        self.connect_count = 0
        self.up_since = 0.0  #: time.monotonic() of the last successful connect

    @classmethod
    def from_settings(cls, settings, node: str, host: str, port: int, **kw) -> "EslConnection":
        """One node of ``settings.esl_endpoints()`` with the ESL timeouts from config."""
        kw.setdefault("command_timeout", settings.esl_command_timeout)
        kw.setdefault("connect_timeout", settings.esl_connect_timeout)
        kw.setdefault("reconnect_max_delay", settings.esl_reconnect_max_delay)
        kw.setdefault("bgapi_timeout", settings.bgapi_timeout)
        kw.setdefault("healthy_after", settings.esl_healthy_after_s)
        kw.setdefault("max_queued_events", settings.esl_event_queue_max)
        return cls(node, host, port, settings.esl_password.get_secret_value(), **kw)

    def __repr__(self) -> str:
        return f"<EslConnection {self.node} {self.host}:{self.port} {'up' if self.connected else 'down'}>"

    # ------------------------------------------------------------------ lifecycle
    @property
    def connected(self) -> bool:
        p = self._proto
        return p is not None and p.connected and not p.lost.is_set()

    def start(self, wait: bool = True, timeout: Optional[float] = None) -> None:
        """Connect, authenticate and subscribe; keep the connection up until :meth:`stop`.

        ``wait=True`` blocks until the first connect succeeds (FreeSWITCH down: retries in
        the background; give ``timeout`` to raise :class:`EslNotConnected` after that long,
        retries continue).  A wrong password raises :class:`EslAuthError` and stops.
        ``wait=False`` returns at once; failures are logged and retried with backoff.
        """
        if self._supervisor is None:
            self._stopping.clear()
            self._dispatcher = gevent.spawn(self._dispatch_loop)
            self._supervisor = gevent.spawn(self._supervise)
        if not wait:
            return
        try:
            self._first.get(timeout=timeout)
        except gevent.Timeout:
            raise EslNotConnected(
                f"ESL {self.node}: FreeSWITCH at {self.host}:{self.port} not reachable within {timeout:g}s (still retrying)"
            ) from None
        except EslAuthError:
            self.stop()
            raise

    def stop(self) -> None:
        """Say ``exit``, close, fail waiting jobs; handlers get no more calls."""
        self._stopping.set()
        proto = self._proto
        if proto is not None and proto.connected:
            try:
                proto.send("exit", timeout=1.0)
            except EslError:
                pass
        if proto is not None:
            proto.close("stopped")
        sup, self._supervisor = self._supervisor, None
        if sup is not None and sup is not gevent.getcurrent():
            sup.kill()
        self._up.clear()
        self._proto = None
        jobs, self._jobs = self._jobs, {}
        for result, _ in jobs.values():
            if not result.ready():
                result.set_exception(EslNotConnected(f"ESL {self.node}: connection stopped"))
        disp, self._dispatcher = self._dispatcher, None
        if disp is not None and disp is not gevent.getcurrent():
            disp.kill()
        if not self._first.ready():
            self._first.set_exception(EslNotConnected(f"ESL {self.node}: stopped"))
        self._first = gevent.event.AsyncResult()

    def wait_connected(self, timeout: Optional[float] = None) -> bool:
        return self._up.wait(timeout) and self.connected

    # ------------------------------------------------------------------ handlers
    def on_event(self, handler: Handler) -> Handler:
        self._event_handlers.append(handler)
        return handler

    def on_connected(self, handler: Handler) -> Handler:
        self._connected_handlers.append(handler)
        return handler

    def on_disconnected(self, handler: Handler) -> Handler:
        self._disconnected_handlers.append(handler)
        return handler

    def remove_handler(self, handler: Handler) -> None:
        for lst in (self._event_handlers, self._connected_handlers, self._disconnected_handlers):
            while handler in lst:
                lst.remove(handler)

    def add_filter(self, header: str, value: str) -> None:
        """``filter <header> <value>``, remembered and restored after every reconnect.

        ``filter Event-Name BACKGROUND_JOB`` is added alongside, because a filter drops
        every event that lacks its header (bgapi results would never arrive).
        """
        _check_one_line(f"{header} {value}", "filter")
        if any(c.isspace() for c in header):
            raise ValueError(f"filter header with whitespace: {header!r}")
        new = [(header, value)]
        if ("Event-Name", "BACKGROUND_JOB") not in self._filters and (header, value) != ("Event-Name", "BACKGROUND_JOB"):
            new.insert(0, ("Event-Name", "BACKGROUND_JOB"))
        for h, v in new:
            if (h, v) in self._filters:
                continue
            self._filters.append((h, v))
            if self.connected:
                self._expect_ok(self.send(f"filter {h} {v}"), "filter")

    # ------------------------------------------------------------------ commands
    def send(self, command: str, timeout: Optional[float] = None) -> Reply:
        """Send one raw ESL command (extra header lines allowed) and return its reply.

        While a reconnect is in progress, waits for it up to the command's timeout.
        """
        first = command.split("\n", 1)[0].strip().lower()
        if any(first == f or first.startswith(f + " ") for f in _FORBIDDEN):
            raise ValueError(f"{first.split(' ')[0]!r} is not allowed on the shared control connection")
        timeout = self.command_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        proto = self._proto
        if proto is None or not proto.connected or proto.lost.is_set():
            if self._supervisor is None:
                raise EslNotConnected(f"ESL {self.node}: not started")
            if not self._up.wait(timeout):
                raise EslNotConnected(f"ESL {self.node}: not connected to {self.host}:{self.port} ({self.last_disconnect_reason or 'connecting'})")
            proto = self._proto
            if proto is None:
                raise EslNotConnected(f"ESL {self.node}: not connected")
        return proto.send(command, timeout=max(0.001, deadline - time.monotonic()))

    def api(self, cmd: str, timeout: Optional[float] = None) -> str:
        """``api <cmd>``: the raw body (``-ERR ...`` is returned, not raised: see commands.py)."""
        _check_one_line(cmd, "api command")
        return self.send(f"api {cmd}", timeout).text

    def bgapi_async(self, cmd: str, timeout: Optional[float] = None) -> gevent.event.AsyncResult:
        """Start ``bgapi <cmd>`` with our own Job-UUID; the result resolves to the job's body.

        Only the immediate ``+OK Job-UUID`` reply is awaited here.  Jobs survive a reconnect
        (FreeSWITCH fires BACKGROUND_JOB to every subscriber) and fail with
        :class:`EslTimeout` after ``timeout`` (default ``bgapi_timeout``).
        """
        _check_one_line(cmd, "bgapi command")
        job = str(uuidlib.uuid4())
        result = gevent.event.AsyncResult()
        self._jobs[job] = (result, cmd)
        wait = self.bgapi_timeout if timeout is None else timeout
        expiry = gevent.spawn_later(wait, self._expire_job, job, wait)
        result.rawlink(lambda _r: expiry.kill(block=False))
        try:
            reply = self.send(f"bgapi {cmd}\nJob-UUID: {job}")
            if not reply.reply_text.startswith("+OK"):
                raise CommandError(f"bgapi {cmd}", reply.reply_text)
        except BaseException as exc:
            self._jobs.pop(job, None)
            if not result.ready():
                result.set_exception(exc if isinstance(exc, Exception) else EslError(repr(exc)))
            if not isinstance(exc, Exception):
                raise
        return result

    def bgapi(self, cmd: str, timeout: Optional[float] = None) -> str:
        """``bgapi <cmd>`` and wait for its BACKGROUND_JOB body; never blocks the connection."""
        return self.bgapi_async(cmd, timeout).get()

    def _expire_job(self, job: str, wait: float) -> None:
        entry = self._jobs.pop(job, None)
        if entry and not entry[0].ready():
            entry[0].set_exception(EslTimeout(f"ESL {self.node}: no BACKGROUND_JOB for {entry[1].split(' ', 1)[0]!r} within {wait:g}s"))

    @staticmethod
    def _expect_ok(reply: Reply, what: str) -> None:
        if not reply.reply_text.startswith("+OK"):
            raise EslError(f"{what} refused by FreeSWITCH: {reply.reply_text}")

    # ------------------------------------------------------------------ internals
    def _on_wire_event(self, event: eslwire.Event) -> None:
        """Runs in the reader: resolve bgapi jobs now, queue the event for the handlers."""
        try:
            if event.name == "BACKGROUND_JOB":
                entry = self._jobs.pop(event.get("Job-UUID", ""), None)
                if entry is not None and not entry[0].ready():
                    entry[0].set(event.text)
        except Exception:
            log.exception("ESL %s: BACKGROUND_JOB handling failed", self.node)
        self._queue.put(("event", event))

    def _queue_paused(self) -> None:
        self._log_throttle.log(
            "paused", logging.WARNING,
            "ESL %s: %d events queued (limit %d): not reading from FreeSWITCH until the handlers catch up",
            self.node, self._queue.qsize(), self._queue.limit)

    @property
    def queue_size(self) -> int:
        return self._queue.qsize()

    @property
    def queue_peak(self) -> int:
        """The most events ever queued at once (stays near ``max_queued_events`` under a flood)."""
        return self._queue.peak

    def _dispatch_loop(self) -> None:
        done = 0
        while True:
            kind, item = self._queue.get()
            done += 1
            if done % _BATCH == 0:
                gevent.sleep(0)  # a backlog must not starve the other nodes' calls
            started = time.monotonic()
            if kind == "event":
                for handler in list(self._event_handlers):
                    try:
                        handler(item)
                    except Exception:
                        log.exception(
                            "ESL %s: event handler %s failed on %s for call %s",
                            self.node, getattr(handler, "__qualname__", handler), item.key, item.uuid or "-",
                        )
                took = time.monotonic() - started
                if took > _SLOW_HANDLER_S:
                    self._log_throttle.log(
                        "slow", logging.WARNING,
                        "ESL %s: handlers took %.1fs on %s for call %s; every event of this node waited",
                        self.node, took, item.key, item.uuid or "-")
            else:
                handlers = self._connected_handlers if kind == "connected" else self._disconnected_handlers
                for handler in list(handlers):
                    try:
                        handler(self)
                    except Exception:
                        log.exception("ESL %s: %s handler %s failed", self.node, kind, getattr(handler, "__qualname__", handler))

    def _open(self) -> _Protocol:
        proto = _Protocol(self)
        try:
            with gevent.Timeout(self.connect_timeout, EslNotConnected(f"ESL {self.node}: connect/auth to {self.host}:{self.port} timed out after {self.connect_timeout:g}s")):
                try:
                    proto.connect()
                except ValueError:
                    raise EslAuthError(f"ESL {self.node}: FreeSWITCH at {self.host}:{self.port} rejected the password") from None
                except gs.NotConnectedError as exc:
                    if proto.rejected:
                        raise EslAuthError(f"ESL {self.node}: FreeSWITCH at {self.host}:{self.port} refused this client: {proto.rejected}") from None
                    raise EslNotConnected(f"ESL {self.node}: {_bare(exc, self.node) or 'not connected'}") from None
                except (OSError, OverflowError) as exc:  # OverflowError: a port past 65535
                    raise EslNotConnected(f"ESL {self.node}: cannot connect to {self.host}:{self.port}: {exc}") from None
            self._expect_ok(proto.send(self._subscription), "event subscription")
            for h, v in self._filters:
                self._expect_ok(proto.send(f"filter {h} {v}"), "filter")
        except BaseException:
            proto.close("connect failed")
            raise
        return proto

    def _supervise(self) -> None:
        delay = 0.0  # the backoff reached: only a connection that stayed healthy resets it
        throttle = self._log_throttle
        while not self._stopping.is_set():
            if delay and self._stopping.wait(delay):
                break
            try:
                proto = self._open()
            except EslAuthError as exc:
                throttle.log("failed", logging.ERROR, "%s", exc)
                if not self._first.ready():
                    self._first.set_exception(exc)
                delay = self._backoff(delay)
                continue
            except EslError as exc:
                delay = self._backoff(delay)
                throttle.log("failed", logging.WARNING, "%s; retrying in %.1fs", exc, delay)
                continue
            self._proto = proto
            self.connect_count += 1
            self.up_since = up_since = time.monotonic()
            self._up.set()
            throttle.log("connected", logging.INFO, "ESL %s: connected to %s:%d and subscribed", self.node, self.host, self.port)
            self._queue.put(("connected", None))
            if not self._first.ready():
                self._first.set(None)
            self._watch(proto)
            self._up.clear()
            self.last_disconnect_reason = _bare(proto.lost_reason or "closed", self.node)
            if self._stopping.is_set():
                break
            self._queue.put(("disconnected", None))
            level = delay
            delay = 0.0  # first retry immediately, then back off
            if time.monotonic() - up_since < self.healthy_after:
                delay = self._backoff(level)  # it dropped soon after connecting: keep backing off
            throttle.log("lost", logging.WARNING, "ESL %s: connection lost (%s); reconnecting in %.1fs",
                         self.node, self.last_disconnect_reason, delay)

    def _backoff(self, delay: float) -> float:
        nxt = min(self.reconnect_max_delay, max(0.1, delay * 2))
        return nxt * random.uniform(0.8, 1.0)

    def _watch(self, proto: _Protocol) -> None:
        """Wait for the connection to be lost; probe it when it has been silent too long."""
        while not self._stopping.is_set():
            if proto.lost.wait(self.keepalive_interval / 2):
                return
            if time.monotonic() - proto.last_rx >= self.keepalive_interval:
                try:
                    proto.send("api status", timeout=self.command_timeout)
                except EslError as exc:
                    reason = f"liveness probe failed: {_bare(exc, self.node)}"
                    log.warning("ESL %s: %s", self.node, reason)
                    proto.mark_lost(reason)
                    return
