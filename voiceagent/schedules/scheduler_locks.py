"""Free the RQ scheduler locks a killed worker left behind, so a restarted worker schedules at once.

RQ's scheduler holds one lock per queue for 61 s and renews it; a worker killed with -9 leaves
its locks until they expire, and the restarted worker only tries again at its next maintenance
(10 minutes): meanwhile no scheduled run is moved onto its queue.  A lock is freed here only
when its holder is certainly dead: its scheduler record is gone, or it names this host and a
process id that does not exist.
"""
from __future__ import annotations

import logging
import os
import socket
from typing import List

import redis
from rq.scheduler import RQScheduler

from ..jobs.queues import Queues

log = logging.getLogger(__name__)


def _text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _alive(pid: int) -> bool:
    """True if ``pid`` runs; a zombie (killed, not yet reaped by whoever inherited it) is dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def free_dead_scheduler_locks(queues: Queues) -> List[str]:
    """Delete the scheduler locks of ``queues`` held by a dead scheduler; the queue names freed."""
    r = queues.connection
    freed = []
    for q in queues.all():
        lock = RQScheduler.get_locking_key(q.name)
        holder = r.get(lock)
        if holder is None:
            continue
        info = {_text(k): _text(v) for k, v in r.hgetall(f"rq:scheduler:{_text(holder)}").items()}
        host, pid = info.get("hostname"), info.get("pid", "")
        dead = not info or (host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)))
        if not dead:
            continue
        with r.pipeline() as p:  # only if still held by that holder
            try:
                p.watch(lock)
                if p.get(lock) != holder:
                    continue
                p.multi()
                p.delete(lock)
                p.execute()
            except redis.WatchError:
                continue
        freed.append(q.name)
        log.info("freed the scheduler lock of %s left by a dead scheduler %s", q.name, _text(holder))
    return freed
