"""The call-event stream: one bounded Redis Stream, read through consumer groups.

A consumer group keeps its own position and every entry it was given stays pending until
acknowledged, so a consumer that is down (or starts late) loses nothing: on its next read it
first gets back what it had not acknowledged, then what arrived since.  Entries another
consumer of the group left unacknowledged for ``stale_ms`` are taken over (XAUTOCLAIM).
"""
from __future__ import annotations

import logging
from typing import Any, Iterator, List, Optional, Tuple

import redis

from .events import _Event, encode, parse
from .keys import Keys

log = logging.getLogger(__name__)

DEFAULT_MAXLEN = 100_000  # ~ a few days of a busy worker; trimmed approximately (cheap)


class EventStream:
    def __init__(self, client: redis.Redis, keys: Keys, *, maxlen: int = DEFAULT_MAXLEN) -> None:
        self.r = client
        self.key = keys.events
        self.maxlen = maxlen

    def publish(self, event: _Event, pipe: Optional[Any] = None) -> None:
        """Append ``event`` (inside ``pipe`` when given, so it lands with the record change it reports)."""
        (pipe if pipe is not None else self.r).xadd(self.key, encode(event), maxlen=self.maxlen, approximate=True)

    def ensure_group(self, group: str, start: str = "0") -> None:
        """Create ``group`` if missing; a new group starts at ``start`` ('0' = the oldest kept entry)."""
        try:
            self.r.xgroup_create(self.key, group, id=start, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, group: str, consumer: str, *, count: int = 100, block_ms: Optional[int] = 1000,
             stale_ms: int = 60_000) -> List[Tuple[str, Any]]:
        """The next entries for ``consumer``: its own unacknowledged ones first, then stale ones of
        others, then new ones (waiting up to ``block_ms``).  Unreadable entries are acknowledged and skipped."""
        self.ensure_group(group)
        own = self._decode(self.r.xreadgroup(group, consumer, {self.key: "0"}, count=count), group)
        if own:
            return own
        if stale_ms:
            _next, stolen, *_ = self.r.xautoclaim(self.key, group, consumer, min_idle_time=stale_ms, count=count)
            got = self._decode([[self.key, stolen]], group)
            if got:
                return got
        return self._decode(self.r.xreadgroup(group, consumer, {self.key: ">"}, count=count, block=block_ms), group)

    def ack(self, group: str, *entry_ids: str) -> None:
        if entry_ids:
            self.r.xack(self.key, group, *entry_ids)

    def consume(self, group: str, consumer: str, **kw: Any) -> Iterator[Tuple[str, Any]]:
        """Endless iterator of (entry id, event); the caller acknowledges each after handling it."""
        while True:
            yield from self.read(group, consumer, **kw)

    def tail(self, last_id: str = "$", *, block_ms: int = 1000, count: int = 100) -> Tuple[str, List[Any]]:
        """Events after ``last_id`` without a group (for waiting on one call); returns the new last id."""
        got = self.r.xread({self.key: last_id}, count=count, block=block_ms) or []
        events = []
        for _key, entries in got:
            for entry_id, fields in entries:
                last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                ev = parse(fields)
                if ev is not None:
                    events.append(ev)
        return last_id, events

    def last_id(self) -> str:
        info = self.r.xinfo_stream(self.key) if self.r.exists(self.key) else None
        if not info:
            return "0-0"
        last = info.get("last-generated-id") or info.get(b"last-generated-id") or b"0-0"
        return last.decode() if isinstance(last, bytes) else str(last)

    def _decode(self, reply: Any, group: str) -> List[Tuple[str, Any]]:
        out: List[Tuple[str, Any]] = []
        for _key, entries in reply or []:
            for entry_id, fields in entries:
                eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                if fields is None:  # trimmed away while pending: nothing left to deliver
                    self.ack(group, eid)
                    continue
                ev = parse(fields)
                if ev is None:
                    log.warning("event stream: skipping unreadable entry %s", eid)
                    self.ack(group, eid)
                    continue
                out.append((eid, ev))
        return out
