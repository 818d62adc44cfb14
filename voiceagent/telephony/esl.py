"""One long-lived inbound Event Socket connection per FreeSWITCH node: :class:`EslConnection`.

The parts, one module each: :mod:`esl_greenswitch` (the only code that knows greenswitch's
insides: connect + auth), :mod:`esl_protocol` (one TCP connection: our reader, the reply FIFO,
timed writes), :mod:`esl_jobs` (bgapi correlation by a client-chosen ``Job-UUID``),
:mod:`esl_dispatch` (handlers run from a queue by one greenlet per node), :mod:`esl_subscription`
(what we subscribe to, what we never send), :mod:`esl_errors`.

This module supervises them: reconnect with capped exponential backoff (reset only by a
connection that stayed up ``healthy_after`` seconds, so a server that accepts and drops at once
gets a few reconnects, not thousands), re-subscription and filter restore, and a liveness probe
of an idle connection.  A flood of events must not take the process with it: the queue is
bounded by back-pressure (:mod:`eslqueue`: the reader stops reading when it is full, TCP pushes
back on FreeSWITCH).
"""
from __future__ import annotations

import logging
import random
import time
from typing import Any, List, Optional, Sequence, Tuple

import gevent
import gevent.event
from greenswitch import esl as gs

from voiceagent.observability.log_throttle import LogThrottle
from voiceagent.telephony import eslwire
from voiceagent.telephony.esl_dispatch import EventDispatcher, Handler
from voiceagent.telephony.esl_errors import (
    CommandError,
    EslAuthError,
    EslDisconnected,
    EslError,
    EslNotConnected,
    EslTimeout,
    Reply,
    bare,
)
from voiceagent.telephony.esl_jobs import BgapiJobs
from voiceagent.telephony.esl_protocol import EslProtocol
from voiceagent.telephony.esl_subscription import (
    DEFAULT_EVENTS,
    FORBIDDEN,
    FORK_SUBCLASSES,
    check_one_line,
    subscription_command,
)
from voiceagent.telephony.eslqueue import EventQueue

__all__ = [
    "EslConnection", "EslError", "EslNotConnected", "EslDisconnected", "EslTimeout", "EslAuthError",
    "CommandError", "Reply", "Handler", "DEFAULT_EVENTS", "FORK_SUBCLASSES", "subscription_command",
]

log = logging.getLogger(__name__)

#: Reconnect-cycle log lines (connected, lost, retrying) per node at most this often, seconds.
_RECONNECT_LOG_INTERVAL = 10.0


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
        self._jobs = BgapiJobs(node)
        self._queue = EventQueue(max_queued_events)
        self._log_throttle = LogThrottle(log, _RECONNECT_LOG_INTERVAL)
        self._handlers = EventDispatcher(node, self._queue, self._log_throttle, self)
        self._proto: Optional[EslProtocol] = None
        self._up = gevent.event.Event()
        self._stopping = gevent.event.Event()
        self._first = gevent.event.AsyncResult()
        self._supervisor: Optional[gevent.Greenlet] = None
        self._dispatcher: Optional[gevent.Greenlet] = None
        self.last_disconnect_reason = ""
        self.connect_count = 0
        self.up_since = 0.0  #: time.monotonic() of the last successful connect

    @classmethod
    def from_settings(cls, settings: Any, node: str, host: str, port: int, **kw: Any) -> "EslConnection":
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
            self._dispatcher = gevent.spawn(self._handlers.run)
            self._supervisor = gevent.spawn(self._supervise)
        if not wait:
            return
        try:
            self._first.get(timeout=timeout)
        except gevent.Timeout:
            raise EslNotConnected(
                f"ESL {self.node}: FreeSWITCH at {self.host}:{self.port} not reachable within {timeout:g}s "
                "(still retrying)"
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
        self._jobs.fail_all(lambda: EslNotConnected(f"ESL {self.node}: connection stopped"))
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
        self._handlers.event_handlers.append(handler)
        return handler

    def on_connected(self, handler: Handler) -> Handler:
        self._handlers.connected_handlers.append(handler)
        return handler

    def on_disconnected(self, handler: Handler) -> Handler:
        self._handlers.disconnected_handlers.append(handler)
        return handler

    def remove_handler(self, handler: Handler) -> None:
        self._handlers.remove(handler)

    def add_filter(self, header: str, value: str) -> None:
        """``filter <header> <value>``, remembered and restored after every reconnect.

        ``filter Event-Name BACKGROUND_JOB`` is added alongside, because a filter drops
        every event that lacks its header (bgapi results would never arrive).
        """
        check_one_line(f"{header} {value}", "filter")
        if any(c.isspace() for c in header):
            raise ValueError(f"filter header with whitespace: {header!r}")
        new = [(header, value)]
        jobs_filter = ("Event-Name", "BACKGROUND_JOB")
        if jobs_filter not in self._filters and (header, value) != jobs_filter:
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
        if any(first == f or first.startswith(f + " ") for f in FORBIDDEN):
            raise ValueError(f"{first.split(' ')[0]!r} is not allowed on the shared control connection")
        timeout = self.command_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        proto = self._proto
        if proto is None or not proto.connected or proto.lost.is_set():
            if self._supervisor is None:
                raise EslNotConnected(f"ESL {self.node}: not started")
            if not self._up.wait(timeout):
                raise EslNotConnected(f"ESL {self.node}: not connected to {self.host}:{self.port} "
                                      f"({self.last_disconnect_reason or 'connecting'})")
            proto = self._proto
            if proto is None:
                raise EslNotConnected(f"ESL {self.node}: not connected")
        return proto.send(command, timeout=max(0.001, deadline - time.monotonic()))

    def api(self, cmd: str, timeout: Optional[float] = None) -> str:
        """``api <cmd>``: the raw body (``-ERR ...`` is returned, not raised: see commands.py)."""
        check_one_line(cmd, "api command")
        return self.send(f"api {cmd}", timeout).text

    def bgapi_async(self, cmd: str, timeout: Optional[float] = None) -> gevent.event.AsyncResult:
        """Start ``bgapi <cmd>`` with our own Job-UUID; the result resolves to the job's body.

        Only the immediate ``+OK Job-UUID`` reply is awaited here.  Jobs survive a reconnect
        (FreeSWITCH fires BACKGROUND_JOB to every subscriber) and fail with
        :class:`EslTimeout` after ``timeout`` (default ``bgapi_timeout``).
        """
        check_one_line(cmd, "bgapi command")
        job, result = self._jobs.open(cmd, self.bgapi_timeout if timeout is None else timeout)
        try:
            reply = self.send(f"bgapi {cmd}\nJob-UUID: {job}")
            if not reply.reply_text.startswith("+OK"):
                raise CommandError(f"bgapi {cmd}", reply.reply_text)
        except BaseException as exc:
            self._jobs.discard(job)
            if not result.ready():
                result.set_exception(exc if isinstance(exc, Exception) else EslError(repr(exc)))
            if not isinstance(exc, Exception):
                raise
        return result

    def bgapi(self, cmd: str, timeout: Optional[float] = None) -> str:
        """``bgapi <cmd>`` and wait for its BACKGROUND_JOB body; never blocks the connection."""
        text: str = self.bgapi_async(cmd, timeout).get()
        return text

    @staticmethod
    def _expect_ok(reply: Reply, what: str) -> None:
        if not reply.reply_text.startswith("+OK"):
            raise EslError(f"{what} refused by FreeSWITCH: {reply.reply_text}")

    # ------------------------------------------------------------------ internals
    def _on_wire_event(self, event: eslwire.Event) -> None:
        """Runs in the reader: resolve bgapi jobs now, queue the event for the handlers."""
        if event.name == "BACKGROUND_JOB":
            self._jobs.resolve(event)
        self._queue.put(("event", event))

    def _queue_paused(self) -> None:
        self._log_throttle.log(
            "paused", logging.WARNING,
            "ESL %s: %d events queued (limit %d): not reading from FreeSWITCH until the handlers catch up",
            self.node, self._queue.qsize(), self._queue.limit)

    @property
    def pending_jobs(self) -> int:
        """bgapi jobs still waiting for their BACKGROUND_JOB (0 once every job resolved or failed)."""
        return len(self._jobs)

    @property
    def queue_size(self) -> int:
        return self._queue.qsize()

    @property
    def queue_peak(self) -> int:
        """The most events ever queued at once (stays near ``max_queued_events`` under a flood)."""
        return self._queue.peak

    def _open(self) -> EslProtocol:
        proto = EslProtocol(self)
        where = f"{self.node}: FreeSWITCH at {self.host}:{self.port}"
        try:
            timed_out = EslNotConnected(f"ESL {self.node}: connect/auth to {self.host}:{self.port} "
                                        f"timed out after {self.connect_timeout:g}s")
            with gevent.Timeout(self.connect_timeout, timed_out):
                try:
                    proto.connect()
                except ValueError:
                    raise EslAuthError(f"ESL {where} rejected the password") from None
                except gs.NotConnectedError as exc:
                    if proto.rejected:
                        raise EslAuthError(f"ESL {where} refused this client: {proto.rejected}") from None
                    raise EslNotConnected(f"ESL {self.node}: {bare(exc, self.node) or 'not connected'}") from None
                except (OSError, OverflowError) as exc:  # OverflowError: a port past 65535
                    raise EslNotConnected(
                        f"ESL {self.node}: cannot connect to {self.host}:{self.port}: {exc}") from None
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
            throttle.log("connected", logging.INFO, "ESL %s: connected to %s:%d and subscribed",
                         self.node, self.host, self.port)
            self._queue.put(("connected", None))
            if not self._first.ready():
                self._first.set(None)
            self._watch(proto)
            self._up.clear()
            self.last_disconnect_reason = bare(proto.lost_reason or "closed", self.node)
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

    def _watch(self, proto: EslProtocol) -> None:
        """Wait for the connection to be lost; probe it when it has been silent too long."""
        while not self._stopping.is_set():
            if proto.lost.wait(self.keepalive_interval / 2):
                return
            if time.monotonic() - proto.last_rx >= self.keepalive_interval:
                try:
                    proto.send("api status", timeout=self.command_timeout)
                except EslError as exc:
                    reason = f"liveness probe failed: {bare(exc, self.node)}"
                    log.warning("ESL %s: %s", self.node, reason)
                    proto.mark_lost(reason)
                    return
