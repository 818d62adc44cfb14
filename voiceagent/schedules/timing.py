"""When a schedule's runs fall: pure functions of the schedule and ``now`` (tests use a fixed clock).

Recurring times are wall-clock times in the schedule's zone.  croniter walks *naive* local
times (so it never sees an offset change) and each is mapped to an instant here, the way cron
users expect on the two daylight-saving days:

- spring forward: a time in the gap (02:30 in Berlin on 2026-03-29) runs once, shifted by the
  gap (03:30 local), as ``fold=0`` maps it (PEP 495) - it is not skipped;
- fall back: a time that happens twice (02:30 in Berlin on 2026-10-25) runs once, at its first
  occurrence; its repeat is earlier than the instant already run, so it is never returned.

Times are whole Unix seconds: a run's due time is part of its job id and idempotency key.
"""
from __future__ import annotations

import math
from datetime import date, datetime, timezone
from typing import List, Optional, Tuple
from zoneinfo import ZoneInfo

from croniter import croniter

from .models import ScheduleSpec, When

UTC = timezone.utc
_DAYS = {"daily": "*", "weekdays": "1-5", "weekends": "0,6"}
_MAX_STEPS = 5000  # naive times looked at for one next run (a cron that matches rarely, e.g. 29 Feb)


class TimingError(ValueError):
    """A schedule that can never run (or not as asked); ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def cron_of(when: When) -> str:
    """The cron expression of a recurring ``when`` (``every`` + ``time`` is a cron with one time)."""
    if when.cron is not None:
        return when.cron
    assert when.every is not None and when.time is not None
    hh, mm = when.time.split(":")
    return f"{int(mm)} {int(hh)} * * {_DAYS[when.every]}"


def instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive local time: the first occurrence of a repeated time, a time in a
    gap moved forward by the gap (both what ``fold=0`` means)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def one_time_due(when: When, anchor: float) -> int:
    """The one run of a one-time schedule, in whole seconds (an ``at`` with a fraction rounds up)."""
    if when.at is not None:
        return math.ceil(when.at.timestamp())
    assert when.in_seconds is not None
    return math.ceil(anchor + when.in_seconds)


def next_recurring(when: When, zone: ZoneInfo, after: float, until: Optional[date] = None) -> Optional[int]:
    """The first run strictly after ``after`` (Unix seconds), or None past ``until``."""
    start = datetime.fromtimestamp(after, zone).replace(tzinfo=None, fold=0)
    it = croniter(cron_of(when), start)
    for _ in range(_MAX_STEPS):
        wall = it.get_next(datetime)
        if until is not None and wall.date() > until:
            return None
        t = int(instant(wall, zone).timestamp())
        if t > after:
            return t
    return None


def next_due(spec: ScheduleSpec, *, anchor: float, after: float, runs_done: int = 0) -> Optional[int]:
    """The next run of ``spec`` strictly after ``after``, honouring ``until`` and ``max_runs``;
    None when the series has ended.  ``anchor`` is when ``when`` was set (for ``in_seconds``)."""
    if spec.max_runs is not None and runs_done >= spec.max_runs:
        return None
    if not spec.when.recurring:
        if runs_done > 0:
            return None
        due = one_time_due(spec.when, anchor)
        return due if due > after else None
    return next_recurring(spec.when, spec.zone, after, spec.until)


def upcoming(spec: ScheduleSpec, *, anchor: float, after: float, runs_done: int, count: int) -> List[int]:
    """Up to ``count`` next runs (the first is :func:`next_due`)."""
    out: List[int] = []
    t: Optional[float] = after
    while len(out) < count and t is not None:
        nxt = next_due(spec, anchor=anchor, after=t, runs_done=runs_done + len(out))
        if nxt is None:
            break
        out.append(nxt)
        t = nxt
    return out


def first_due(spec: ScheduleSpec, *, anchor: float, now: float) -> int:
    """The first run of a new or edited schedule; :class:`TimingError` naming the field when there
    is none (a time in the past, an ``until`` before the first run)."""
    if not spec.when.recurring:
        due = one_time_due(spec.when, anchor)
        if due <= now:
            field = "when.at" if spec.when.at is not None else "when.in_seconds"
            raise TimingError(field, "is in the past")
        if spec.until is not None and datetime.fromtimestamp(due, spec.zone).date() > spec.until:
            raise TimingError("until", "is before the one run")
        return due
    if spec.until is not None and spec.until < datetime.fromtimestamp(now, spec.zone).date():
        raise TimingError("until", "is in the past")
    nxt = next_recurring(spec.when, spec.zone, now, spec.until)
    if nxt is None:
        raise TimingError("until" if spec.until is not None else "when.cron", "leaves no run")
    return nxt


def skip_missed(spec: ScheduleSpec, *, anchor: float, after: float, runs_done: int, now: float,
                grace: float) -> Tuple[Optional[int], List[int]]:
    """The next run after ``after`` that is not more than ``grace`` late at ``now``, and the runs
    before it that are (missed while everything was down; at most 1000 are listed)."""
    missed: List[int] = []
    t = next_due(spec, anchor=anchor, after=after, runs_done=runs_done)
    while t is not None and t < now - grace:
        if len(missed) < 1000:
            missed.append(t)
        else:  # a long outage of a frequent schedule: jump instead of walking every run
            t = next_due(spec, anchor=anchor, after=now - grace - 1, runs_done=runs_done)
            break
        t = next_due(spec, anchor=anchor, after=t, runs_done=runs_done)
    return t, missed


def iso(ts: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, zone).isoformat()


def wall(ts: int, zone: ZoneInfo) -> Tuple[str, str]:
    """(date, HH:MM) local to ``zone`` - what the DST tests compare."""
    d = datetime.fromtimestamp(ts, zone)
    return d.date().isoformat(), d.strftime("%H:%M")

