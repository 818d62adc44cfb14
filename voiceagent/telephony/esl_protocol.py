"""One TCP connection to FreeSWITCH: our reader, the reply FIFO, timed writes, loss handling.

Replaces the parts of greenswitch 0.0.19 that can hurt a call (protocols.md C1):

* its event parser glues bodies onto headers and URL-decodes them (defect 1) and its
  ``event json`` path kills the reader (defect 2): our reader frames bytes with
  :class:`eslwire.FrameReader` and parses plain events with :func:`eslwire.parse_event_plain`,
  so BACKGROUND_JOB results and mod_audio_fork JSON bodies arrive intact;
* its ``send`` has no timeout, uses ``sock.send`` and leaves pending commands hanging when
  the socket drops (defects 3, 6): ours is timed, writes with ``sendall`` under a lock (so
  the reply FIFO matches the write order), and fails every pending command when the
  connection is lost;
* its readline loop can spin on a half-dead socket (defect 4): ours treats EOF and any socket
  error as a lost connection (the owner probes an idle one).

Replies are matched *in the reader*, so a slow event handler never delays them; events go to
the owner, which queues them.  The reader yields to the other greenlets every few frames,
because a gevent ``recv`` with data waiting returns without ever switching (one flooding node
once delayed another node's call by 8.8 s and the heartbeat by 11 s).
"""
from __future__ import annotations

import collections
import logging
import time
from typing import Deque, Optional

import gevent
import gevent.event
import gevent.lock
from gevent import socket
from typing_extensions import Protocol

from voiceagent.telephony import eslwire
from voiceagent.telephony.esl_errors import EslDisconnected, EslNotConnected, EslTimeout, Reply
from voiceagent.telephony.esl_greenswitch import GreenswitchConnection

log = logging.getLogger("voiceagent.telephony.esl")  # one logger for the whole ESL client

#: Frames the reader handles before letting other greenlets run.
BATCH = 64


class ProtocolOwner(Protocol):
    """What a connection needs from the :class:`~voiceagent.telephony.esl.EslConnection` that owns it."""

    node: str
    host: str
    port: int
    password: str
    connect_timeout: float
    command_timeout: float

    def _on_wire_event(self, event: eslwire.Event) -> None: ...

    def _queue_paused(self) -> None: ...  # called only on an owner that has a ``_queue``, once it is full


class EslProtocol(GreenswitchConnection):
    """One TCP connection: greenswitch's connect/auth, our reader and timed send.

    Not reusable: the owner makes a new one for every (re)connect.
    """

    def __init__(self, owner: ProtocolOwner) -> None:
        super().__init__(owner.host, owner.port, owner.password, timeout=owner.connect_timeout)
        self._owner = owner
        self._reader = eslwire.FrameReader()
        self._write_lock = gevent.lock.Semaphore()
        self._pending: Deque[gevent.event.AsyncResult] = collections.deque()
        self.lost = gevent.event.Event()
        self.lost_reason = ""
        self.rejected = ""  # rude-rejection text, if any
        self.last_rx = time.monotonic()

    def receive_events(self) -> None:
        """Replaces greenswitch's readline parser (defects 1, 2, 4)."""
        reason = "FreeSWITCH closed the connection"
        try:
            queue = getattr(self._owner, "_queue", None)  # the owner's EventQueue (back-pressure)
            while self.reading:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.last_rx = time.monotonic()
                for n, frame in enumerate(self._reader.feed(data), 1):
                    self._on_frame(frame)
                    if n % BATCH == 0:
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
            self.wake_connect()
        elif ctype == "text/disconnect-notice":
            log.info("ESL %s: disconnect notice: %s", self._owner.node, frame.body.decode("utf-8", "replace").strip())
            self.connected = False
            self.wake_connect()
        elif ctype == "text/rude-rejection":
            self.rejected = frame.body.decode("utf-8", "replace").strip() or "rude rejection"
            log.error("ESL %s: FreeSWITCH refused us (ACL): %s", self._owner.node, self.rejected)
            self.connected = False
            self.wake_connect()
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
        self.stop_reading()
        self.wake_connect()
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
        self.close_greenswitch_file()
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
            reply: Reply = slot.get()
            return reply
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
        g = self.reader_greenlet()
        if g is not None and not g.dead and g is not gevent.getcurrent():
            g.kill(block=False)

