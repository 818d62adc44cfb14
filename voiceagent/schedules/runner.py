"""The run job (``run_schedule``, run by ``voiceagent jobs worker``) and the reconciler.

A run: claim (schedule, due) once, submit the call with an idempotency key made of both, record
the run and the series' next position in one transaction, arm the next run.  Every step can be
repeated after a crash without dialing twice:

- a duplicate or retried job finds the run recorded (or the claim held) and places nothing;
- a job that died after submitting is retried and gets the first call's id back from the
  idempotency key, so the retry records that call instead of placing another;
- a process that died before arming the next run leaves a schedule whose run is recorded but
  whose next run has no job: :func:`reconcile` (at worker start-up, after API writes) arms it.

A timer (a caller's, made by voice) is first said into its owner's live call (:mod:`timer_fire`);
only with the owner off the line is its call placed.  Timers and callbacks go on the ``high``
queue (a person asked for them), everything else on ``bulk``.

A run found more than the misfire grace late (everything was down) is recorded as missed and
the series goes on; a failed or unanswered call never ends a series either.
"""
from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Dict, List, Optional

from pydantic import ValidationError

from ..jobs.dispatch import Priority
from ..records.dial_policy import DialRefused
from . import timing
from .models import Schedule, ScheduleRun
from .service import Schedules, run_key
from .store import ScheduleGone
from .timer_fire import say_timer

log = logging.getLogger(__name__)

#: A run's queue priority: a timer or callback a caller asked for is dialed before bulk calls.
PRIORITY: Dict[str, Priority] = {"timer": "high", "callback": "high"}

_cached: Optional[Schedules] = None


def _schedules() -> Schedules:
    """One per job process, from its environment (the jobs worker's settings)."""
    global _cached
    if _cached is None:
        from ..config import load_settings

        _cached = Schedules.from_settings(load_settings())
    return _cached


def run_schedule(schedule_id: str, due: int) -> str:
    """The RQ job of one due run; returns what it did (placed, refused, failed, missed, done, stale,
    busy, gone)."""
    return run(_schedules(), schedule_id, int(due), time.time())


def _advance(sv: Schedules, s: Schedule, after: int, now: float) -> List[ScheduleRun]:
    """Move ``s`` to its next run after ``after``; the runs skipped as missed, as records."""
    nxt, missed = timing.skip_missed(s, anchor=s.anchor, after=after, runs_done=s.runs, now=now, grace=sv.grace)
    s.next_due = nxt
    if missed:
        s.last_due = missed[-1]
    if s.state != "paused":
        s.state = "active" if nxt is not None else "finished"
    if not missed:
        return []
    return [ScheduleRun(due=missed[0], status="missed", skipped=len(missed) - 1,
                        error=f"due more than {sv.grace:g} s before it could run")]


def _place(sv: Schedules, sched: Schedule, due: int, now: float) -> ScheduleRun:
    key = run_key(sched.id, due)
    earlier = sv.store.placed_call(key)
    if earlier is not None:  # an attempt that died after submitting: that call is the run
        return ScheduleRun(due=due, fired=now, status="placed", call_id=earlier)
    if now - due > sv.grace:
        return ScheduleRun(due=due, status="missed", error=f"found {now - due:.0f} s late (grace {sv.grace:g} s)")
    if sched.kind == "timer":  # on the line: said into their call; else the call back below
        client = sv.dispatcher.client
        said = say_timer(client.calls, sched, due, now, client.policy.default_region)
        if said is not None:
            return said
    request = sched.call.model_copy(update={"idempotency_key": key})
    try:
        call_id = sv.dispatcher.submit(request, priority=PRIORITY.get(sched.kind, "bulk"))
    except DialRefused as exc:
        return ScheduleRun(due=due, fired=now, status="refused", error=f"{exc.field}: {exc.message}")
    except ValidationError as exc:
        return ScheduleRun(due=due, fired=now, status="failed", error=str(exc).splitlines()[0][:500])
    return ScheduleRun(due=due, fired=now, status="placed", call_id=call_id)


def run(sv: Schedules, schedule_id: str, due: int, now: float) -> str:
    """One due run of a schedule at ``now`` (the job's body, callable directly by tests)."""
    sched = sv.store.get(schedule_id)
    if sched is None:
        return "gone"
    if sv.store.run(schedule_id, due) is not None:
        _ensure_armed(sv, schedule_id, now)
        return "done"
    if sched.paused or sched.next_due != due:
        return "stale"  # edited, paused or already moved on: this job is not the run expected
    if not sv.store.claim(schedule_id, due, uuid.uuid4().hex, sv.claim_seconds):
        retry_at = now + sv.store.claim_left(schedule_id, due) + 1
        sv.armer.arm(schedule_id, due, at=retry_at, retry=int(retry_at))
        return "busy"
    try:
        result = _place(sv, sched, due, now)
    except Exception:
        sv.store.release(schedule_id, due)  # let a retry place it (the idempotency key prevents a 2nd call)
        raise

    def record(s: Schedule) -> List[ScheduleRun]:
        if s.next_due != due:  # edited while the call was being placed: record it, keep the new timing
            return [result]
        if result.status != "missed":
            s.runs += 1
        s.last_due = due
        return [result, *_advance(sv, s, due, now)]

    try:
        after = sv.store.update(schedule_id, record)
    except ScheduleGone:
        return result.status  # deleted meanwhile
    sv.store.trim(schedule_id)
    if after.state == "active" and after.next_due is not None:
        sv.armer.arm(schedule_id, after.next_due)
    log.info("schedule %s run due %d: %s%s", schedule_id, due, result.status,
             f" (call {result.call_id})" if result.call_id else "")
    return result.status


def _ensure_armed(sv: Schedules, schedule_id: str, now: float) -> Optional[Schedule]:
    """Advance past a recorded run and arm the next run if it has no job."""
    def fix(s: Schedule) -> List[ScheduleRun]:
        if s.state == "active" and s.next_due is not None and sv.store.run(s.id, s.next_due) is not None:
            s.last_due = s.next_due
            return _advance(sv, s, s.next_due, now)
        return []

    try:
        sched = sv.store.update(schedule_id, fix)
    except ScheduleGone:
        return None
    if sched.state == "active" and sched.next_due is not None and not sv.armer.waiting(schedule_id, sched.next_due):
        sv.armer.arm(schedule_id, sched.next_due)
        log.info("schedule %s: armed its run due %d (it had no job)", schedule_id, sched.next_due)
    return sched


def reconcile(sv: Schedules, now: float) -> List[str]:
    """Arm every active schedule whose next run has no job; returns their ids.  Safe to run any
    time, from any number of processes (arming is idempotent, runs are claimed)."""
    armed = []
    for sid in sv.store.ids():
        before = sv.store.get(sid)
        if before is None or before.state != "active":
            continue
        waiting = before.next_due is not None and sv.armer.waiting(sid, before.next_due)
        if waiting and sv.store.run(sid, before.next_due or 0) is None:
            continue
        if _ensure_armed(sv, sid, now) is not None:
            armed.append(sid)
    return armed


def on_worker_start(s: Any) -> List[str]:
    """What ``voiceagent jobs worker`` runs before it serves: free the RQ scheduler locks a killed
    worker left and reconcile the schedules (a failure is logged, never stops the worker)."""
    from .scheduler_locks import free_dead_scheduler_locks

    try:
        sv = Schedules.from_settings(s)
        free_dead_scheduler_locks(sv.armer.queues)
        return reconcile(sv, time.time())
    except Exception:  # noqa: BLE001 - the worker must still serve the queues
        log.exception("reconciling schedules at start-up failed")
        return []
