"""Schedules and their run history in Redis (key names from :class:`records.keys.Keys`).

A schedule is one JSON value, changed by read-modify-write under WATCH so a run job advancing
the series and an API edit never overwrite each other.  A run's record and the schedule's new
position are written in one MULTI: after a crash either both happened or neither did.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import redis

from ..records.keys import Keys
from .models import Schedule, ScheduleRun

#: A place in the listing: (created, id).
Position = Tuple[float, str]


class ScheduleGone(KeyError):
    """The schedule does not exist (deleted, or never made)."""


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class ScheduleStore:
    def __init__(self, client: redis.Redis, keys: Keys, *, history: int = 100) -> None:
        self.r = client
        self.keys = keys
        self.history = history

    # ------------------------------------------------------------------ schedules
    def create(self, sched: Schedule) -> None:
        with self.r.pipeline() as p:
            p.set(self.keys.schedule(sched.id), sched.model_dump_json())
            p.zadd(self.keys.schedules, {sched.id: sched.created})
            if sched.owner:
                p.zadd(self.keys.schedules_owned(sched.owner), {sched.id: sched.created})
            p.execute()

    def get(self, schedule_id: str) -> Optional[Schedule]:
        raw = self.r.get(self.keys.schedule(schedule_id))
        return Schedule.model_validate_json(raw) if raw is not None else None

    def update(self, schedule_id: str, fn: Callable[[Schedule], Sequence[ScheduleRun]]) -> Schedule:
        """Apply ``fn`` to the stored schedule (it edits it in place and returns the runs to record
        in the same transaction); retried if the schedule changed meanwhile."""
        key = self.keys.schedule(schedule_id)
        while True:
            with self.r.pipeline() as p:
                try:
                    p.watch(key)
                    raw = p.get(key)
                    if raw is None:
                        raise ScheduleGone(schedule_id)
                    sched = Schedule.model_validate_json(raw)
                    runs = fn(sched)
                    p.multi()
                    p.set(key, sched.model_dump_json())
                    for run in runs:
                        self._add_run(p, schedule_id, run)
                    p.execute()
                    return sched
                except redis.WatchError:
                    continue

    def delete(self, schedule_id: str) -> bool:
        sched = self.get(schedule_id)
        with self.r.pipeline() as p:
            p.delete(self.keys.schedule(schedule_id), self.keys.schedule_runs(schedule_id))
            p.zrem(self.keys.schedules, schedule_id)
            if sched is not None and sched.owner:
                p.zrem(self.keys.schedules_owned(sched.owner), schedule_id)
            deleted = p.execute()[0]
        return bool(deleted)

    def ids(self) -> List[str]:
        return [_text(i) for i in self.r.zrange(self.keys.schedules, 0, -1)]

    def owned(self, owner: str) -> List[Schedule]:
        """The schedules ``owner`` made by voice, oldest first (only those whose record names them)."""
        ids = [_text(i) for i in self.r.zrange(self.keys.schedules_owned(owner), 0, -1)]
        return [s for s in (self.get(i) for i in ids) if s is not None and s.owner == owner]

    def page(self, after: Optional[Position], limit: int) -> Tuple[List[Schedule], Optional[Position]]:
        """Schedules oldest first after the cursor position (created, id); the next position or None."""
        lo = f"{after[0]!r}" if after else "-inf"
        rows = self.r.zrangebyscore(self.keys.schedules, lo, "+inf", withscores=True, start=0,
                                    num=limit + 1 + (50 if after else 0))
        picked: List[Tuple[str, float]] = []
        for row in rows:
            sid, score = _text(row[0]), float(row[1])
            if after and (score, sid) <= after:
                continue  # at or before the cursor (ties on the same created time: by id)
            picked.append((sid, score))
        out = [s for s in (self.get(sid) for sid, _ in picked[:limit]) if s is not None]
        more = len(picked) > limit
        return out, ((picked[limit - 1][1], picked[limit - 1][0]) if more else None)

    # ------------------------------------------------------------------ runs
    def _add_run(self, p: Any, schedule_id: str, run: ScheduleRun) -> None:
        p.hset(self.keys.schedule_runs(schedule_id), str(run.due), run.model_dump_json(exclude_none=True))

    def run(self, schedule_id: str, due: int) -> Optional[ScheduleRun]:
        raw = self.r.hget(self.keys.schedule_runs(schedule_id), str(due))
        return ScheduleRun.model_validate_json(raw) if raw is not None else None

    def runs(self, schedule_id: str, limit: int = 50) -> List[ScheduleRun]:
        """The run history, newest first."""
        raw: Dict[Any, Any] = self.r.hgetall(self.keys.schedule_runs(schedule_id))
        runs = sorted((ScheduleRun.model_validate_json(v) for v in raw.values()), key=lambda r: -r.due)
        return runs[:limit]

    def trim(self, schedule_id: str) -> None:
        """Keep the newest ``history`` runs."""
        key = self.keys.schedule_runs(schedule_id)
        if self.r.hlen(key) <= self.history:
            return
        dues = sorted(int(_text(f)) for f in self.r.hkeys(key))
        old = dues[: len(dues) - self.history]
        if old:
            self.r.hdel(key, *[str(d) for d in old])

    # ------------------------------------------------------------------ claims
    def claim(self, schedule_id: str, due: int, token: str, seconds: int) -> bool:
        """True for the one job that may place run ``due`` now (SET NX, expiring)."""
        return bool(self.r.set(self.keys.schedule_claim(schedule_id, due), token, nx=True, ex=seconds))

    def claim_left(self, schedule_id: str, due: int) -> float:
        ms = self.r.pttl(self.keys.schedule_claim(schedule_id, due))
        return max(0.0, ms / 1000.0) if ms and ms > 0 else 0.0

    def release(self, schedule_id: str, due: int) -> None:
        self.r.delete(self.keys.schedule_claim(schedule_id, due))

    def placed_call(self, idempotency_key: str) -> Optional[str]:
        """The call an earlier attempt of a run placed (the records' idempotency key), if any."""
        raw = self.r.get(self.keys.idempotency(idempotency_key))
        return _text(raw) if raw is not None else None
