"""Call records and the request queue in Redis.

A record is one JSON document; every change is a read-modify-write under WATCH, so the client
(placing, cancelling), the worker that owns the call and a sweeper marking a dead worker's call
can never overwrite each other.  The event a change reports goes out in the same transaction,
so the stream and the records never disagree.

A queued call (``queued``: in the RQ queue, see ``jobs/``) waits in a per-priority zset; handing it
to the voice workers (``requested``) and ending it move it out in the same transaction, and every
change that ends a call frees its slot of CALL_CONCURRENCY_LIMIT there too (:meth:`_effects`), so
no end path (hangup, cancel, expiry, the dead-worker sweep) can leak one.

Requests wait in a zset scored by their deadline (earliest first).  A worker takes one with
ZPOPMIN inside a script that also records its claim, so exactly one worker gets each request,
and a request is never put back: a worker that dies after claiming leaves a record the sweep
marks failed, never a second dial.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable, List, Optional, Union

import redis

from .events import CallEnded, CallQueued, CallRequested, _Event
from .keys import Keys
from .models import TERMINAL, CallRecord, Outcome, StateChange
from .replies import text
from .stream import EventStream

log = logging.getLogger(__name__)

CLAIM_KIND = "taken"
_RETRIES = 50

# Pop the earliest-deadline request and name its taker, atomically.  The claim key outlives the
# record's "claimed" write, so a taker that dies between the two is still known.
_TAKE = """
local got = redis.call('ZPOPMIN', KEYS[1])
if #got == 0 then return false end
local id = got[1]
redis.call('SET', ARGV[2] .. id, ARGV[1], 'EX', ARGV[3])
return {id, got[2]}
"""


class RecordGone(LookupError):
    pass


class QueueFull(RuntimeError):
    """The queue of ``priority`` holds ``depth`` calls, its limit: nothing was created."""

    def __init__(self, priority: str, depth: int) -> None:
        super().__init__(f"the {priority} queue is full: {depth} calls waiting")
        self.priority = priority
        self.depth = depth


PRIORITIES = ("high", "bulk")


class RecordStore:
    def __init__(self, client: redis.Redis, keys: Keys, *, retention_seconds: float = 30 * 86400,
                 stream: Optional[EventStream] = None) -> None:
        self.r = client
        self.keys = keys
        self.retention = max(60, int(retention_seconds))
        self.stream = stream or EventStream(client, keys)
        self._take = client.register_script(_TAKE)

    # ------------------------------------------------------------------ reading
    def get(self, call_id: str) -> Optional[CallRecord]:
        raw = self.r.get(self.keys.record(call_id))
        return self._load(raw, call_id)

    def get_many(self, ids: Iterable[str]) -> List[CallRecord]:
        ids = list(ids)
        if not ids:
            return []
        raws = self.r.mget([self.keys.record(i) for i in ids])
        return [rec for i, raw in zip(ids, raws, strict=True) if (rec := self._load(raw, i)) is not None]

    def ids_between(self, since: float = 0.0, until: float = float("inf"), *, limit: int = 100,
                    newest_first: bool = True) -> List[str]:
        lo, hi = since, ("+inf" if until == float("inf") else until)
        if newest_first:
            raw = self.r.zrevrangebyscore(self.keys.records, hi, lo, start=0, num=limit)
        else:
            raw = self.r.zrangebyscore(self.keys.records, lo, hi, start=0, num=limit)
        return [text(x) for x in raw]

    def open_ids(self) -> List[str]:
        return sorted(text(x) for x in self.r.smembers(self.keys.open_records))

    def forget_open(self, call_id: str) -> None:
        self.r.srem(self.keys.open_records, call_id)

    @staticmethod
    def _load(raw: Optional[Union[bytes, str]], call_id: str) -> Optional[CallRecord]:
        if raw is None:
            return None
        try:
            return CallRecord.model_validate_json(raw)
        except ValueError as exc:
            log.warning("record %s is unreadable (%s): ignored", call_id, str(exc)[:200])
            return None

    # ------------------------------------------------------------------ writing
    def create(self, record: CallRecord, *, event: Optional[_Event] = None, pending_score: Optional[float] = None,
               idempotency_key: Optional[str] = None, max_queued: Optional[int] = None) -> str:
        """Write a new record (and queue it as a request when ``pending_score`` is given).

        With an idempotency key the first record for that key wins; its id is returned.  With
        ``max_queued`` (a :class:`events.CallQueued` event) :class:`QueueFull` is raised instead when
        that priority's queue already holds that many calls (checked in the same transaction)."""
        key = self.keys.record(record.id)
        now = time.time()
        queued_key = self.keys.queued(event.priority) if isinstance(event, CallQueued) else None
        with self.r.pipeline() as pipe:
            for _ in range(_RETRIES):
                try:
                    if max_queued is not None and queued_key is not None:
                        pipe.watch(queued_key)
                        depth = int(pipe.zcard(queued_key))
                        if depth >= max_queued:
                            existing = self._idempotent(idempotency_key)
                            if existing:
                                return existing
                            raise QueueFull(event.priority, depth)  # type: ignore[union-attr]
                    if idempotency_key:
                        idem = self.keys.idempotency(idempotency_key)
                        if not self.r.set(idem, record.id, nx=True, ex=self.retention):
                            pipe.reset()
                            return self._idempotent(idempotency_key) or record.id
                    pipe.multi()
                    pipe.set(key, record.dump(), ex=self.retention, nx=True)
                    pipe.zadd(self.keys.records, {record.id: record.created or now})
                    pipe.zremrangebyscore(self.keys.records, "-inf", now - self.retention)
                    if not record.ended:
                        pipe.sadd(self.keys.open_records, record.id)
                    if pending_score is not None:
                        self._queue_request(pipe, record.id, pending_score)
                    if event is not None:
                        self._effects(pipe, record, event)
                    pipe.execute()
                    return record.id
                except redis.WatchError:
                    if idempotency_key:  # our key claim must not outlive a record that was not written
                        self.r.delete(self.keys.idempotency(idempotency_key))
                    continue
        raise redis.RedisError(f"record {record.id}: too much contention, not created")

    def _idempotent(self, idempotency_key: Optional[str]) -> Optional[str]:
        if not idempotency_key:
            return None
        existing = self.r.get(self.keys.idempotency(idempotency_key))
        return text(existing) if existing else None

    def _queue_request(self, pipe: Any, call_id: str, score: float) -> None:
        """For the voice workers: the pending zset and the nudge (in the caller's transaction)."""
        pipe.zadd(self.keys.pending_requests, {call_id: score})
        pipe.lpush(self.keys.request_wake, call_id)
        pipe.ltrim(self.keys.request_wake, 0, 99)

    def _effects(self, pipe: Any, rec: CallRecord, event: _Event) -> None:
        """Publish ``event`` and move the call between the queues its event says it enters or leaves."""
        self.stream.publish(event, pipe)
        if isinstance(event, CallQueued):
            pipe.zadd(self.keys.queued(event.priority), {rec.id: event.request_deadline})
        elif isinstance(event, CallRequested):
            if rec.priority:  # handed over from the RQ queue
                pipe.zrem(self.keys.queued(rec.priority), rec.id)
                self._queue_request(pipe, rec.id, event.request_deadline)
        elif isinstance(event, CallEnded):
            if rec.priority:
                pipe.zrem(self.keys.queued(rec.priority), rec.id)
            pipe.zrem(self.keys.call_slots, rec.id)
            pipe.lpush(self.keys.slot_wake, rec.id)
            pipe.ltrim(self.keys.slot_wake, 0, 99)

    def update(self, call_id: str, change: Callable[[CallRecord], Optional[_Event]], *,
               create: Optional[Callable[[], CallRecord]] = None) -> Optional[CallRecord]:
        """Apply ``change`` to the stored record (it returns the event to publish, or None).

        A missing record is made with ``create`` (when given) or raises :class:`RecordGone`.
        An ended record is left as it is unless ``change`` itself handles that."""
        key = self.keys.record(call_id)
        for _ in range(_RETRIES):
            with self.r.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    rec = self._load(raw, call_id)
                    if rec is None:
                        if create is None:
                            raise RecordGone(call_id)
                        rec = create()
                    event = change(rec)
                    pipe.multi()
                    pipe.set(key, rec.dump(), ex=self.retention)
                    if raw is None:
                        pipe.zadd(self.keys.records, {rec.id: rec.created or time.time()})
                    if rec.ended:
                        pipe.srem(self.keys.open_records, rec.id)
                    else:
                        pipe.sadd(self.keys.open_records, rec.id)
                    if event is not None:
                        self._effects(pipe, rec, event)
                    pipe.execute()
                    return rec
                except redis.WatchError:
                    continue
        raise redis.RedisError(f"record {call_id}: too much contention, update not applied")

    # ------------------------------------------------------------------ requests
    def take_request(self, worker_id: str, claim_ttl: float) -> Optional[str]:
        """The earliest-deadline pending request, now this worker's (None if there is none)."""
        got = self._take(keys=[self.keys.pending_requests],
                         args=[worker_id, self.keys.claim(CLAIM_KIND, ""), max(1, int(claim_ttl))])
        if not got:
            return None
        return text(got[0])

    def taker(self, call_id: str) -> Optional[str]:
        raw = self.r.get(self.keys.claim(CLAIM_KIND, call_id))
        return text(raw) if raw else None

    def unqueue(self, call_id: str) -> bool:
        """Remove a request nobody has taken (True exactly once: for whoever removed it)."""
        return bool(self.r.zrem(self.keys.pending_requests, call_id))

    def expired_requests(self, now: Optional[float] = None) -> List[str]:
        """Pending requests whose deadline has passed, each returned to exactly one caller."""
        now = time.time() if now is None else now
        out = []
        for raw in self.r.zrangebyscore(self.keys.pending_requests, "-inf", now):
            cid = text(raw)
            if self.unqueue(cid):
                out.append(cid)
        return out

    def fail_expired(self, worker: str = "") -> List[str]:
        """End the queued requests whose deadline passed as failed (any process may run this; each once)."""
        failed = []
        for call_id, reason in [(i, NO_TAKER) for i in self.expired_requests()] + \
                [(i, NOT_DIALED) for i in self.expired_queued()]:
            try:
                self.update(call_id, ending(Outcome.FAILED, worker=worker, reason=reason))
                failed.append(call_id)
            except RecordGone:
                pass
        return failed

    def pending_count(self) -> int:
        return int(self.r.zcard(self.keys.pending_requests))

    def queued_counts(self) -> dict:
        """Calls waiting in the RQ queue (state ``queued``), per priority."""
        with self.r.pipeline(transaction=False) as pipe:
            for p in PRIORITIES:
                pipe.zcard(self.keys.queued(p))
            return {p: int(n) for p, n in zip(PRIORITIES, pipe.execute(), strict=True)}

    def expired_queued(self, now: Optional[float] = None) -> List[str]:
        """Queued calls whose deadline passed QUEUED_GRACE_SECONDS ago (each returned to exactly one caller):
        a dial job waiting for a slot ends its call at the deadline itself, saying why; this is for calls
        no job runs for (no RQ worker, or a submitter that died before enqueueing)."""
        now = (time.time() if now is None else now) - QUEUED_GRACE_SECONDS
        out = []
        for p in PRIORITIES:
            key = self.keys.queued(p)
            for cid in [text(raw) for raw in self.r.zrangebyscore(key, "-inf", now)]:
                if self.r.zrem(key, cid):
                    out.append(cid)
        return out

    def wait_for_request(self, timeout: float, conn: Optional[redis.Redis] = None) -> None:
        """Block up to ``timeout`` for a nudge that a request arrived (spurious wake-ups are fine);
        ``conn``: a connection of the caller's own (a blocked one is not in any shared pool)."""
        (conn or self.r).blpop([self.keys.request_wake], timeout=max(1, int(round(timeout))))


NO_TAKER = "no voice worker took the request before its deadline"
NOT_DIALED = "still queued past its deadline: no job worker ran its dial job (is 'voiceagent jobs worker' running?)"
QUEUED_GRACE_SECONDS = 15.0


def ended_event(rec: CallRecord, worker: str = "") -> CallEnded:
    """The ``call.ended`` event of a record :func:`end` has just ended."""
    return CallEnded(call_id=rec.id, at=rec.ended_at or time.time(), worker=worker,
                     outcome=rec.outcome or Outcome.FAILED, duration=rec.duration or 0.0,
                     hangup_cause=rec.hangup_cause, ended_by=rec.ended_by, reason=rec.reason)


def ending(outcome: Outcome, *, worker: str = "", at: Optional[float] = None, reason: str = "", cause: str = "",
           ended_by: str = "system") -> Callable[[CallRecord], Optional[CallEnded]]:
    """A change for :meth:`RecordStore.update` that ends a record (unless it already ended) and reports it."""
    def change(rec: CallRecord) -> Optional[CallEnded]:
        if rec.ended:
            return None
        end(rec, outcome, at=at, reason=reason, cause=cause, ended_by=ended_by)
        return ended_event(rec, worker)
    return change


def end(rec: CallRecord, outcome: Outcome, *, at: Optional[float] = None, reason: str = "", cause: str = "",
        ended_by: str = "") -> None:
    """Mark ``rec`` ended (once: a later end keeps the first outcome)."""
    if rec.ended:
        return
    at = time.time() if at is None else at
    rec.state = TERMINAL
    rec.history.append(StateChange(state=TERMINAL, at=at))
    rec.outcome = Outcome.CANCELED if rec.cancel_requested and outcome != Outcome.ANSWERED else outcome
    rec.reason = reason or rec.reason
    rec.hangup_cause = cause or rec.hangup_cause
    rec.ended_by = ended_by or rec.ended_by
    rec.ended_at = at
    rec.duration = round(at - rec.answered_at, 3) if rec.answered_at else 0.0
