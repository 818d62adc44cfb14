"""The fork server's accept loop: it must outlive running out of file descriptors.

websockets' ``Server.serve_forever`` leaves its loop on any OSError from ``accept()``; at the
descriptor limit (EMFILE) that silently ends the server for good while the worker keeps its ESL
connection and heartbeat, so every later call stays parked.  This loop replaces it (websockets
17.4, pinned): on a resource error it logs (throttled), drops a few of the oldest pending
sockets to free descriptors, backs off and tries again; it only ends when the listening socket
is closed.  Each accepted socket passes the :class:`ConnectionGuard` before websockets sees it.
"""
from __future__ import annotations

import errno
import logging
import threading
import time
from typing import Any, Callable, Dict, Optional

import gevent
from websockets.sync.server import Server, ServerConnection

from voiceagent.observability.log_throttle import LogThrottle
from voiceagent.telephony.fork_guard import ConnectionGuard, Slot

log = logging.getLogger(__name__)

# accept() failures that mean "out of descriptors or memory": wait and retry
RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
# the listening socket itself is gone: nothing to retry
_CLOSED_ERRORS = {errno.EBADF, errno.EINVAL, errno.ENOTSOCK}
_MAX_BACKOFF = 1.0
_DROP_ON_EMFILE = 8          # pending sockets dropped per resource error, to get descriptors back
_DEGRADED_FOR = 2.0          # seconds after the last resource error during which we say "not serving"


class AcceptLoop:
    def __init__(self, server: Server, guard: ConnectionGuard, throttle: LogThrottle) -> None:
        self._server = server
        self._guard = guard
        self._throttle = throttle
        self._greenlet: Optional[gevent.Greenlet] = None
        self._stopping = False
        self._last_resource_error: Optional[float] = None
        self.accept_errors = 0
        self.last_error = ""
        self.accepted = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stopping(self) -> None:
        """Called before the listening socket is closed: its accept() error is then the normal end."""
        self._stopping = True

    def join(self, timeout: float) -> None:
        if self._greenlet is not None:
            self._greenlet.join(timeout)

    @property
    def serving(self) -> bool:
        """Listening and able to accept (no descriptor shortage in the last couple of seconds)."""
        if self._stopping or self._greenlet is None or self._greenlet.dead:
            return False
        last = self._last_resource_error
        return last is None or time.monotonic() - last > _DEGRADED_FOR

    def health(self) -> Dict[str, object]:
        return {"serving": self.serving, "accepted": self.accepted, "accept_errors": self.accept_errors,
                "last_accept_error": self.last_error, **self._guard.stats()}

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        srv = self._server
        delay = 0.0
        try:
            while not self._stopping:
                try:
                    sock, addr = srv.socket.accept()
                except OSError as exc:
                    if self._stopping or exc.errno in _CLOSED_ERRORS:
                        if not self._stopping:
                            log.error("fork server listening socket failed: %s; no longer accepting", exc)
                        break
                    delay = self._accept_failed(exc, delay)
                    gevent.sleep(delay)
                    continue
                delay = 0.0
                self.accepted += 1
                try:
                    self._start(sock, addr)
                except Exception:  # never let one connection end the loop
                    log.exception("fork server: could not start a handler for %s", addr)
                    _close(sock)
        finally:
            srv.socket_closed.set()  # what Server.shutdown() waits for
            watcher = getattr(srv, "shutdown_watcher", None)  # serve_forever's wake-up pipe, unused here
            if watcher is not None:
                _close(watcher)

    def _accept_failed(self, exc: OSError, delay: float) -> float:
        if exc.errno not in RESOURCE_ERRORS:  # ECONNABORTED, EPROTO, EPERM...: this peer only
            self.accept_errors += 1
            self.last_error = f"{exc.strerror or exc} (errno {exc.errno})"
            self._throttle.log("accept_error", logging.WARNING, "fork server accept() failed: %s", exc)
            return 0.01
        delay = min(_MAX_BACKOFF, max(0.05, delay * 2))
        self.resource_error(exc, f"retrying in {delay:.2f}s")
        return delay

    def resource_error(self, exc: OSError, then: str = "connection closed") -> None:
        """Out of descriptors at accept() or while websockets sets a connection up (it needs a
        socketpair per connection): say so, and drop the oldest pending sockets to get some back."""
        self.accept_errors += 1
        self.last_error = f"{exc.strerror or exc} (errno {exc.errno})"
        self._last_resource_error = time.monotonic()
        dropped = self._guard.drop_oldest(_DROP_ON_EMFILE)
        for slot in dropped:
            slot.abort()
        self._throttle.log("accept_emfile", logging.WARNING,
                           "fork server cannot accept: %s; %d sockets open, dropped %d unconfirmed, %s",
                           exc, self._guard.total, len(dropped), then)

    def _start(self, sock: Any, addr: Any) -> None:
        slot, victims = self._guard.admit(sock, addr)
        for v in victims:
            v.abort()
        if victims:
            self._throttle.log("drop_pending", logging.WARNING,
                               "fork connection limits reached (FORK_MAX_CONNECTIONS=%d, "
                               "FORK_MAX_PENDING_PER_ADDRESS=%d): dropped the oldest unconfirmed connection from %s",
                               self._guard.max_total, self._guard.max_pending_per_address, victims[0].address)
        if slot is None:
            self._throttle.log("refuse_full", logging.WARNING,
                               "fork connection from %s refused: %d sockets open, all carrying calls "
                               "(FORK_MAX_CONNECTIONS)", addr[0] if isinstance(addr, tuple) else addr,
                               self._guard.total)
            _close(sock)
            return
        srv = self._server
        # Register the handler like serve_forever does, so Server.shutdown() waits for it.
        thread = threading.Thread(target=self._handle, args=(sock, addr, slot), daemon=True)
        with srv.lock:
            srv.handler_threads.add(thread)
        thread.start()

    def _handle(self, sock: Any, addr: Any, slot: Slot) -> None:
        try:
            self._server.handler(sock, addr)  # websockets: handshake, our handler, close
        finally:
            _close(sock)
            self._guard.release(slot)


def reporting_connection(accept_loop: Callable[[], Optional[AcceptLoop]]) -> type:
    """A ServerConnection class that reports EMFILE during its set-up (each one needs a socketpair;
    websockets would close the socket without a word)."""

    class _Connection(ServerConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            try:
                super().__init__(*args, **kwargs)
            except OSError as exc:
                loop = accept_loop()
                if loop is not None and exc.errno in RESOURCE_ERRORS:
                    loop.resource_error(exc)
                raise

    return _Connection


def _close(sock: Any) -> None:
    try:
        sock.close()
    except OSError:
        pass
