"""A caller's timers, callbacks and briefings in words to say on the phone.

"You have a timer for the oven in 8 minutes and a callback at 3 pm": relative for what is near
(under an hour), a clock time in the caller's zone for later today, "tomorrow at 9 am" or the
weekday within a week, the date beyond.  Pure functions of the schedule and ``now``.
"""
from __future__ import annotations

from datetime import datetime
from typing import List, Sequence
from zoneinfo import ZoneInfo

from .models import Schedule

_EVERY = {"daily": "every day", "weekdays": "every weekday", "weekends": "at weekends"}


def clock(dt: datetime) -> str:
    """3 pm, 3:30 pm, 12 noon style (what a TTS voice reads well)."""
    hour = dt.hour % 12 or 12
    half = "am" if dt.hour < 12 else "pm"
    return f"{hour} {half}" if dt.minute == 0 else f"{hour}:{dt.minute:02d} {half}"


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def when_words(due: float, now: float, zone: ZoneInfo) -> str:
    """When ``due`` is, as said to someone at ``now``: "in 8 minutes", "at 3 pm", "tomorrow at 9 am"."""
    left = due - now
    if left < 90:
        return "in " + _count(max(1, int(left)), "second")  # due times are rounded up to whole seconds
    if left < 3600:
        return "in " + _count(round(left / 60), "minute")
    at, today = datetime.fromtimestamp(due, zone), datetime.fromtimestamp(now, zone)
    days = (at.date() - today.date()).days
    if days == 0:
        return f"at {clock(at)}"
    if days == 1:
        return f"tomorrow at {clock(at)}"
    if days < 7:
        return f"on {at.strftime('%A')} at {clock(at)}"
    return f"on {at.strftime('%B')} {at.day} at {clock(at)}"


def _recurring(s: Schedule) -> str:
    w = s.when
    if w.every is not None and w.time is not None:
        hh, mm = (int(x) for x in w.time.split(":"))
        return f"{_EVERY[w.every]} at {clock(datetime(2000, 1, 1, hh, mm))}"
    return "on a repeating schedule"


def describe(s: Schedule, now: float) -> str:
    """One item: "a timer for the oven in 8 minutes", "a callback at 3 pm about the invoice"."""
    zone = s.zone if s.timezone else ZoneInfo("UTC")
    if s.when.recurring:
        when = _recurring(s)
    elif s.next_due is not None:
        when = when_words(s.next_due, now, zone)
    else:
        when = "soon"
    if s.kind == "timer":
        return f"a timer for {s.name} {when}"
    if s.kind == "callback":
        return f"a callback {when} about {s.name}"
    if s.kind == "briefing":
        return f"a {s.name} {when}"
    return f"a scheduled call, {s.name}, {when}"


def join(parts: Sequence[str]) -> str:
    items: List[str] = list(parts)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def summary(items: Sequence[Schedule], now: float) -> str:
    """The sentence the status tool gives: every item, soonest first."""
    if not items:
        return "You have no timers, callbacks or briefings."
    ordered = sorted(items, key=lambda s: s.next_due or 0)
    return f"You have {join([describe(s, now) for s in ordered])}."
