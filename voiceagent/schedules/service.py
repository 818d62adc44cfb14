"""Creating, editing, deleting and reading schedules; the run job and reconciler are in :mod:`runner`.

The dial policy is checked when a schedule is made or its call changed (a number that will be
refused fails now, not at 7 am), and again by the dispatcher when each run is placed.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any, List, Optional, Tuple

import redis

from ..config.jobs import ScheduleSettings
from ..jobs.dispatch import Dispatcher
from ..jobs.queues import Queues
from ..records.keys import Keys
from . import timing
from .arming import Armer
from .models import Schedule, ScheduleEdit, ScheduleKind, ScheduleRun, ScheduleSpec, ScheduleView
from .store import Position, ScheduleGone, ScheduleStore

log = logging.getLogger(__name__)

_SPEC_FIELDS = tuple(ScheduleSpec.model_fields)
_NOT_NULL = ("name", "when", "paused", "call")


def setting(s: Any, name: str) -> Any:
    """A schedule setting, or its default for a process that did not load ScheduleSettings."""
    return getattr(s, name, ScheduleSettings.model_fields[name].default)


def run_key(schedule_id: str, due: int) -> str:
    """The idempotency key of one run: placing it again returns the first call's id."""
    return f"schedule-{schedule_id}-{int(due)}"


class Schedules:
    """The schedules of one prefix: store, job arming and the dispatcher runs submit through."""

    def __init__(self, store: ScheduleStore, armer: Armer, dispatcher: Dispatcher, *, grace: float = 300.0,
                 claim_seconds: int = 300) -> None:
        self.store = store
        self.armer = armer
        self.dispatcher = dispatcher
        self.grace = grace
        self.claim_seconds = claim_seconds

    @classmethod
    def from_settings(cls, s: Any, client: Optional[redis.Redis] = None,
                      dispatcher: Optional[Dispatcher] = None) -> "Schedules":
        dispatcher = dispatcher or Dispatcher.from_settings(s, client)
        r = dispatcher.client.r
        store = ScheduleStore(r, Keys(s.redis_prefix), history=int(setting(s, "schedule_history_runs")))
        return cls(store, Armer(Queues.from_settings(s)), dispatcher,
                   grace=float(setting(s, "schedule_misfire_grace_seconds")),
                   claim_seconds=int(setting(s, "schedule_claim_seconds")))

    # ------------------------------------------------------------------ writing
    def create(self, spec: ScheduleSpec, now: float, *, owner: Optional[str] = None, kind: ScheduleKind = "schedule",
               origin_call: Optional[str] = None, notice: Optional[str] = None) -> Schedule:
        """Raises DialRefused, timing.TimingError (both name the field).  ``owner``, ``kind``, ``origin_call``
        and ``notice`` mark one a caller made by voice (schedules/caller.py)."""
        self.dispatcher.client.policy.check(spec.call)
        first = timing.first_due(spec, anchor=now, now=now)
        sched = Schedule.model_validate({**spec.model_dump(), "id": uuid.uuid4().hex, "created": now,
                                         "updated": now, "anchor": now, "next_due": first,
                                         "state": "paused" if spec.paused else "active",
                                         "owner": owner, "kind": kind, "origin_call": origin_call,
                                         "notice": notice})
        self.store.create(sched)
        if not sched.paused:
            self.armer.arm(sched.id, first)
        self.reconcile_quietly(now)
        return sched

    def edit(self, schedule_id: str, edit: ScheduleEdit, now: float) -> Schedule:
        """Pause, resume or change a schedule and re-arm it.  Raises ScheduleGone,
        pydantic.ValidationError, DialRefused, timing.TimingError."""
        current = self.store.get(schedule_id)
        if current is None:
            raise ScheduleGone(schedule_id)
        changes = edit.model_dump(exclude_unset=True)
        nulls = [k for k in _NOT_NULL if k in changes and changes[k] is None]
        if nulls:
            raise timing.TimingError(nulls[0], "may not be null")
        # the edit's when/call are whole objects: they replace the old ones, not merge into them
        merged = {**current.model_dump(include=set(_SPEC_FIELDS)), **changes}
        spec = ScheduleSpec.model_validate(merged)
        if "call" in changes:
            self.dispatcher.client.policy.check(spec.call)
        anchor = now if "when" in changes else current.anchor
        retimed = any(k in changes for k in ("when", "timezone", "until", "max_runs")) \
            or (current.paused and not spec.paused)
        nxt: Optional[int] = current.next_due
        if retimed and not spec.paused:
            if spec.when.recurring:
                nxt = timing.next_due(spec, anchor=anchor, after=now, runs_done=current.runs)
                if nxt is None and current.runs == 0:
                    timing.first_due(spec, anchor=anchor, now=now)  # raises naming the field
            elif "when" in changes or current.runs == 0:
                nxt = timing.first_due(spec, anchor=anchor, now=now)
            else:
                nxt = None  # a one-time schedule that has run: changing its limits changes nothing

        def apply(s: Schedule) -> List[ScheduleRun]:
            for k in _SPEC_FIELDS:
                setattr(s, k, getattr(spec, k))
            s.anchor, s.updated = anchor, now
            if retimed and not spec.paused:
                s.next_due = nxt
            s.state = "paused" if s.paused else ("active" if s.next_due is not None else "finished")
            return []

        old_due = current.next_due
        sched = self.store.update(schedule_id, apply)
        if old_due is not None and (sched.paused or sched.next_due != old_due):
            self.armer.disarm(schedule_id, old_due)
        if sched.state == "active" and sched.next_due is not None:
            self.armer.arm(schedule_id, sched.next_due)
        self.reconcile_quietly(now)
        return sched

    def delete(self, schedule_id: str) -> bool:
        """Delete the schedule and its pending job (which would find nothing to run anyway)."""
        sched = self.store.get(schedule_id)
        if sched is None:
            return False
        self.armer.disarm(schedule_id, sched.next_due)
        return self.store.delete(schedule_id)

    # ------------------------------------------------------------------ reading
    def view(self, schedule_id: str, *, now: float, next_count: int = 5, history: int = 50) -> ScheduleView:
        sched = self.store.get(schedule_id)
        if sched is None:
            raise ScheduleGone(schedule_id)
        return ScheduleView(schedule=sched, next_runs=self.next_runs(sched, next_count),
                            runs=self.history(sched.id, history))

    def next_runs(self, sched: Schedule, count: int) -> List[str]:
        if sched.state != "active" or sched.next_due is None or count <= 0:
            return []
        rest = timing.upcoming(sched, anchor=sched.anchor, after=sched.next_due, runs_done=sched.runs + 1,
                               count=count - 1)
        return [timing.iso(t, sched.zone) for t in [sched.next_due, *rest]]

    def history(self, schedule_id: str, limit: int) -> List[ScheduleRun]:
        """Runs newest first, each with its call's state and outcome read from the call record."""
        runs = self.store.runs(schedule_id, limit)
        for run in runs:
            if run.call_id:
                rec = self.dispatcher.client.get(run.call_id)
                if rec is not None:
                    run.call_state, run.outcome = rec.state, rec.outcome
        return runs

    def page(self, cursor: Optional[Position], limit: int) -> Tuple[List[Schedule], Optional[Position]]:
        return self.store.page(cursor, limit)

    # ------------------------------------------------------------------ reconciling
    def reconcile(self, now: float) -> List[str]:
        from .runner import reconcile

        return reconcile(self, now)

    def reconcile_quietly(self, now: float) -> None:
        """The reconciler after an API write: its failure must not fail the write that succeeded."""
        try:
            self.reconcile(now)
        except Exception:  # noqa: BLE001 - logged; the next start-up or write reconciles again
            log.exception("reconciling schedules failed")
