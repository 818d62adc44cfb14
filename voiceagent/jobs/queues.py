"""The RQ queues of one Redis prefix, and the connection RQ needs.

RQ keeps its own keys (``rq:...``); our queue *names* carry the prefix so two deployments, or a
test and a running system, sharing one Redis never take each other's jobs.  Workers listen to
the queues in :data:`ORDER`: a free RQ worker always takes a ``high`` call before a ``bulk`` one.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import redis
from rq import Queue

#: Queue roles, in the order a worker serves them.
ORDER = ("high", "bulk", "schedules", "webhooks")


def queue_name(prefix: str, role: str) -> str:
    if role not in ORDER:
        raise ValueError(f"no queue role {role!r} (one of {', '.join(ORDER)})")
    return f"{prefix}-{role}"


def rq_connection(s: Any) -> redis.Redis:
    """RQ stores pickled job data: its connection must not decode responses."""
    return redis.Redis.from_url(s.redis_url, socket_timeout=None, health_check_interval=30)


class Queues:
    """The queues of one prefix on one connection."""

    def __init__(self, connection: redis.Redis, prefix: str) -> None:
        self.connection = connection
        self.prefix = prefix
        self._queues: Dict[str, Queue] = {}

    @classmethod
    def from_settings(cls, s: Any, connection: Optional[redis.Redis] = None) -> "Queues":
        return cls(connection or rq_connection(s), s.redis_prefix)

    def get(self, role: str) -> Queue:
        q = self._queues.get(role)
        if q is None:
            q = self._queues[role] = Queue(queue_name(self.prefix, role), connection=self.connection)
        return q

    def all(self, roles: Optional[List[str]] = None) -> List[Queue]:
        return [self.get(r) for r in (roles or ORDER)]
