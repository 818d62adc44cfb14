"""The cluster-wide concurrent-call limit: CALL_CONCURRENCY_LIMIT slots in one Redis zset.

A slot is the call id, scored by its lease's expiry (Redis' own clock, so hosts' clocks cannot
disagree).  Taking one is a script: expired leases are dropped first (a crashed process never
leaks a slot for longer than its lease), a call that already holds one keeps it (a retried dial
job takes it again instead of a second one), and a new one is added only below the limit.  The
slot is freed by the record store in the same transaction as the call's end (``records/store``),
which also nudges one waiting dial job through the wake list.
"""
from __future__ import annotations

from typing import List, Optional

import redis

from ..records.keys import Keys
from ..records.replies import text

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lease = now + tonumber(ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], lease, ARGV[1])
  return 1
end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], lease, ARGV[1])
  return 1
end
return 0
"""


class CallSlots:
    def __init__(self, client: redis.Redis, keys: Keys, limit: int) -> None:
        self.r = client
        self.keys = keys
        self.limit = limit
        self._take = client.register_script(_TAKE)

    def take(self, call_id: str, lease_seconds: float) -> bool:
        """A slot for ``call_id`` until the lease ends (True), or none free (False)."""
        return bool(self._take(keys=[self.keys.call_slots], args=[call_id, max(1.0, lease_seconds), self.limit]))

    def release(self, call_id: str) -> None:
        """Free ``call_id``'s slot (ending its record does this; for a call that will not be dialed)."""
        with self.r.pipeline() as pipe:
            pipe.zrem(self.keys.call_slots, call_id)
            pipe.lpush(self.keys.slot_wake, call_id)
            pipe.ltrim(self.keys.slot_wake, 0, 99)
            pipe.execute()

    def wait(self, timeout: float, conn: Optional[redis.Redis] = None) -> None:
        """Block up to ``timeout`` (whole seconds, at least 1) for a freed slot's nudge (spurious wake-ups are fine)."""
        (conn or self.r).blpop([self.keys.slot_wake], timeout=max(1, int(round(timeout))))

    def holders(self) -> List[str]:
        """Call ids holding a slot now (expired leases included until the next take drops them)."""
        return [text(x) for x in self.r.zrange(self.keys.call_slots, 0, -1)]

    def count(self) -> int:
        return int(self.r.zcard(self.keys.call_slots))


def lease_seconds(ring_timeout: float, max_duration: Optional[float], max_call_seconds: float,
                  margin: float) -> float:
    """How long a call may hold its slot without reporting its end: ringing, talking, a margin."""
    return float(ring_timeout) + float(max_duration or max_call_seconds) + float(margin)
