"""The ESL client's event queue: bounded by back-pressure, never by dropping events.

The reader parses a chunk of bytes, puts every event of it here and then, if the queue has
reached its limit, stops reading the socket until the dispatcher has worked the backlog down
to half.  While it waits, FreeSWITCH's writes block in TCP: a flood is held in the kernel's
socket buffers and in FreeSWITCH's own queue, not in this process's memory (an unbounded
queue once grew a worker from 70 MB to 1.85 GB).  ``put`` itself never blocks nor refuses, so
the replies parsed from the same chunk are matched at once and control items (connected,
disconnected) always get in; the queue can exceed its limit by at most one chunk's events.
"""
from __future__ import annotations

import collections
from typing import Any, Deque, Optional

import gevent.event


class EventQueue:
    """FIFO for one dispatcher greenlet; the reader calls :meth:`wait_room` between chunks."""

    def __init__(self, limit: int) -> None:
        if limit < 2:
            raise ValueError("event queue limit must be at least 2")
        self.limit = limit
        self._items: Deque[Any] = collections.deque()
        self._nonempty = gevent.event.Event()
        self._room = gevent.event.Event()
        self._room.set()
        self.peak = 0  #: the largest size seen (a test and a metric of how close a flood came)
        self.pauses = 0  #: how often the reader had to stop reading

    def put(self, item: Any) -> None:
        items = self._items
        items.append(item)
        self._nonempty.set()
        size = len(items)
        if size > self.peak:
            self.peak = size
        if size >= self.limit and self._room.is_set():
            self._room.clear()
            self.pauses += 1

    def get(self) -> Any:
        items = self._items
        while not items:
            self._nonempty.clear()
            self._nonempty.wait()
        item = items.popleft()
        if len(items) <= self.limit // 2:
            self._room.set()
        return item

    def qsize(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        return not self._room.is_set()

    def wait_room(self, timeout: Optional[float] = None) -> bool:
        """Block while the queue is full (returns at once otherwise); True once there is room."""
        return self._room.wait(timeout)
