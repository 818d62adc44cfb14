"""Per-call delivery of ESL events: a call whose handling is stuck delays only its own events.

The node's ESL dispatcher runs in one greenlet; if it called the sessions directly, one blocked
session would hold every other call of the node (and, with the event queue full, the node's
command replies too).  So the dispatcher only appends an owned call's event to that call's
lane, and a short-lived greenlet per lane delivers them in wire order, exiting when the lane is
empty (nothing outlives the call).  A lane that keeps growing means the call's handling is
stuck: past ``limit`` events the call is given up (``on_stuck``), loudly, and the lane stops
growing; events are never thrown away without a log line.
"""
from __future__ import annotations

import collections
import logging
from typing import Callable, Deque, Dict, Generic, Protocol, TypeVar

import gevent

log = logging.getLogger(__name__)

#: Events a lane delivers before letting other greenlets run.
_BATCH = 64


class _Named(Protocol):
    """All a lane reads of an event (the typed ones of telephony.events in the worker, wire ones in tests)."""

    @property
    def name(self) -> str: ...


E = TypeVar("E", bound=_Named)


class _Lane(Generic[E]):
    __slots__ = ("events", "dropped")

    def __init__(self) -> None:
        self.events: Deque[E] = collections.deque()
        self.dropped = 0


class CallLanes(Generic[E]):
    """``put(call_id, event)`` from the dispatcher; ``deliver(event)`` runs in the call's lane greenlet."""

    def __init__(self, spawn: Callable[..., gevent.Greenlet], deliver: Callable[[E], None],
                 on_stuck: Callable[[str, int], None], limit: int = 2000) -> None:
        self._spawn = spawn
        self._deliver = deliver
        self._on_stuck = on_stuck
        self.limit = limit
        self._lanes: Dict[str, _Lane[E]] = {}

    def __len__(self) -> int:
        return len(self._lanes)

    def pending(self, call_id: str) -> int:
        lane = self._lanes.get(call_id)
        return len(lane.events) if lane else 0

    def put(self, call_id: str, event: E) -> None:
        lane = self._lanes.get(call_id)
        if lane is None:
            lane = self._lanes[call_id] = _Lane()
            lane.events.append(event)
            self._spawn(self._drain, call_id, lane, call_id=call_id)
            return
        if len(lane.events) >= self.limit:
            lane.dropped += 1
            if lane.dropped == 1:
                log.error("event handling for this call is stuck (%d events waiting): giving the call up; "
                          "its further events are dropped", len(lane.events), extra={"call_id": call_id})
                self._on_stuck(call_id, len(lane.events))
            return
        lane.events.append(event)

    def _drain(self, call_id: str, lane: _Lane[E]) -> None:
        done = 0
        try:
            while lane.events:
                event = lane.events.popleft()
                try:
                    self._deliver(event)
                except Exception:
                    log.exception("handling %s (%s) failed", event.name, type(event).__name__,
                                  extra={"call_id": call_id})
                done += 1
                if done % _BATCH == 0:
                    gevent.sleep(0)
        finally:
            if self._lanes.get(call_id) is lane:
                del self._lanes[call_id]
            if lane.dropped:
                log.error("%d events of this call were dropped while its handling was stuck", lane.dropped,
                          extra={"call_id": call_id})
