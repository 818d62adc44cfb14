"""Running a connection's handlers: one long-lived greenlet per node takes its queue in order.

greenswitch ran handlers in the reader's shadow with a 1 s polling loop; here the reader only
queues, so a failing or slow handler never delays a reply nor stops dispatch (a slow one is
logged: every event of the node waited for it).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, List

import gevent

from voiceagent.observability.log_throttle import LogThrottle
from voiceagent.telephony.eslqueue import EventQueue

log = logging.getLogger("voiceagent.telephony.esl")  # one logger for the whole ESL client

#: Events the dispatcher handles before letting other greenlets run.
BATCH = 64
#: An event whose handlers together take longer than this gets a warning, seconds.
SLOW_HANDLER_S = 0.5

Handler = Callable[..., None]


class EventDispatcher:
    """The ``on_event`` / ``on_connected`` / ``on_disconnected`` handlers of one connection.

    Queue items are ``("event", Event)``, ``("connected", None)`` or ``("disconnected", None)``;
    event handlers get the event, the others ``owner`` (the connection).
    """

    def __init__(self, node: str, queue: EventQueue, throttle: LogThrottle, owner: Any) -> None:
        self.node = node
        self._queue = queue
        self._log_throttle = throttle
        self._owner = owner
        self.event_handlers: List[Handler] = []
        self.connected_handlers: List[Handler] = []
        self.disconnected_handlers: List[Handler] = []

    def remove(self, handler: Handler) -> None:
        for lst in (self.event_handlers, self.connected_handlers, self.disconnected_handlers):
            while handler in lst:
                lst.remove(handler)

    def run(self) -> None:
        """The dispatcher greenlet's body: forever, until killed."""
        done = 0
        while True:
            kind, item = self._queue.get()
            done += 1
            if done % BATCH == 0:
                gevent.sleep(0)  # a backlog must not starve the other nodes' calls
            started = time.monotonic()
            if kind == "event":
                for handler in list(self.event_handlers):
                    try:
                        handler(item)
                    except Exception:
                        log.exception(
                            "ESL %s: event handler %s failed on %s for call %s",
                            self.node, getattr(handler, "__qualname__", handler), item.key, item.uuid or "-",
                        )
                took = time.monotonic() - started
                if took > SLOW_HANDLER_S:
                    self._log_throttle.log(
                        "slow", logging.WARNING,
                        "ESL %s: handlers took %.1fs on %s for call %s; every event of this node waited",
                        self.node, took, item.key, item.uuid or "-")
            else:
                handlers = self.connected_handlers if kind == "connected" else self.disconnected_handlers
                for handler in list(handlers):
                    try:
                        handler(self._owner)
                    except Exception:
                        log.exception("ESL %s: %s handler %s failed",
                                      self.node, kind, getattr(handler, "__qualname__", handler))
