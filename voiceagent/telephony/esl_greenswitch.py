"""The one module that knows greenswitch's insides (checked against greenswitch 0.0.19, the
version setup.cfg and requirements.txt pin; tests/telephony/test_esl_split.py fails on another).

We keep ``InboundESL.connect`` (TCP connect with its timeout, wait for ``auth/request``,
``authenticate`` through our own ``send``) and replace its reader, parser, dispatcher and
``send`` (protocols.md C1, see :mod:`esl_protocol`).  ``connect`` drives the connection through
attributes greenswitch has no public way to reach; they are touched only here:

* ``start_event_handlers`` (called by ``connect``): we start our reader only, not its poller;
* ``_receive_events_greenlet``: where that reader greenlet is kept;
* ``_auth_request_event``: ``connect`` waits on it for the server's ``auth/request`` (set it
  to wake ``connect``, which then checks ``connected``);
* ``_run``: its reader loop's flag;
* ``sock_file``: the ``makefile`` ``connect`` opens and we never read, closed with the socket.
"""
from __future__ import annotations

from typing import Any, Optional

import gevent
from greenswitch import esl as gs

#: The greenswitch release the attributes above were checked against.
CHECKED_GREENSWITCH_VERSION = "0.0.19"


class GreenswitchConnection(gs.InboundESL):  # greenswitch has no type hints: an Any base
    """greenswitch's connect/auth; the subclass provides ``receive_events`` (the reader)."""

    def __init__(self, host: str, port: int, password: str, timeout: float) -> None:
        super().__init__(host, port, password, timeout=timeout)
        self.sock: Any = None
        self.connected: bool = False

    def start_event_handlers(self) -> None:
        """Called by ``connect`` once the socket is up: our reader only (dispatch is ours too)."""
        self._receive_events_greenlet = gevent.spawn(self.receive_events)

    def receive_events(self) -> None:  # pragma: no cover - always overridden
        raise NotImplementedError

    @property
    def reading(self) -> bool:
        """False once the connection is being torn down: the reader must stop."""
        return bool(self._run)

    def stop_reading(self) -> None:
        self._run = False

    def wake_connect(self) -> None:
        """Let a ``connect`` waiting for ``auth/request`` go on (it raises if not ``connected``)."""
        self._auth_request_event.set()

    def reader_greenlet(self) -> Optional[gevent.Greenlet]:
        g: Optional[gevent.Greenlet] = self._receive_events_greenlet
        return g

    def close_greenswitch_file(self) -> None:
        sock_file = getattr(self, "sock_file", None)  # exists only after connect got the socket up
        if sock_file is not None:
            try:
                sock_file.close()
            except OSError:
                pass
