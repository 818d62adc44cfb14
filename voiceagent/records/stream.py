"""The call-event stream: one bounded Redis Stream, read through consumer groups.

A consumer group keeps its own position and every entry it was given stays pending until
acknowledged, so a consumer that is down (or starts late) loses nothing: on its next read it
first gets back what it had not acknowledged, then what arrived since.  Entries another
consumer of the group left unacknowledged for ``stale_ms`` are taken over (XAUTOCLAIM).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Iterator, List, Optional, Tuple

import redis
from redis.typing import EncodableT, FieldT

from .events import _Event, encode, parse
from .keys import Keys
from .replies import text

log = logging.getLogger(__name__)

DEFAULT_MAXLEN = 100_000  # ~ a few days of a busy worker; trimmed approximately (cheap)


class EventStream:
    def __init__(self, client: redis.Redis, keys: Keys, *, maxlen: int = DEFAULT_MAXLEN) -> None:
        self.r = client
        self.key = keys.events
        self.maxlen = maxlen

    def publish(self, event: _Event, pipe: Optional[Any] = None) -> None:
        """Append ``event`` (inside ``pipe`` when given, so it lands with the record change it reports)."""
        # copied into redis-py's field types: a Dict[str, str] is no Dict[FieldT, EncodableT] (dicts are invariant)
        fields: Dict[FieldT, EncodableT] = {k: v for k, v in encode(event).items()}
        (pipe if pipe is not None else self.r).xadd(self.key, fields, maxlen=self.maxlen, approximate=True)

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

    def read_own(self, group: str, consumer: str, *, count: int = 100) -> List[Tuple[str, Any]]:
        """``consumer``'s delivered but unacknowledged entries (what it failed on, or had when it died)."""
        return self._decode(self.r.xreadgroup(group, consumer, {self.key: "0"}, count=count), group)

    def claim_stale(self, group: str, consumer: str, stale_ms: int, *, count: int = 100) -> List[Tuple[str, Any]]:
        """Entries other consumers of ``group`` left unacknowledged for ``stale_ms``, now ``consumer``'s."""
        _next, stolen, *_ = self.r.xautoclaim(self.key, group, consumer, min_idle_time=stale_ms, count=count)
        return self._decode([[self.key, stolen]], group)

    def read_new(self, group: str, consumer: str, *, count: int = 100,
                 block_ms: Optional[int] = 1000) -> List[Tuple[str, Any]]:
        """Entries never delivered to ``group``, waiting up to ``block_ms`` for one."""
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
        events = []
        for entry_id, fields in _entries(self.r.xread({self.key: last_id}, count=count, block=block_ms)):
            last_id = entry_id
            ev = parse(fields) if fields is not None else None
            if ev is not None:
                events.append(ev)
        return last_id, events

    def last_id(self) -> str:
        info = self.r.xinfo_stream(self.key) if self.r.exists(self.key) else None
        if not info:
            return "0-0"
        last = info.get("last-generated-id") or "0-0"  # redis-py decodes XINFO's keys
        return text(last)

    def _decode(self, reply: Any, group: str) -> List[Tuple[str, Any]]:
        out: List[Tuple[str, Any]] = []
        for eid, fields in _entries(reply):
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


def _entries(reply: Any) -> Iterator[Tuple[str, Optional[Dict[Any, Any]]]]:
    """(entry id, fields) of an XREAD/XREADGROUP reply in RESP2's shape, [[stream, [(id, fields), ...]], ...]
    (redis-py's return type also covers RESP3's dicts, which our clients never get)."""
    for _key, entries in reply or []:
        for entry_id, fields in entries:
            yield text(entry_id), fields
