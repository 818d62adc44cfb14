"""What the scheduling tool plugins (tools/timer.py, callback.py, briefing.py, my_schedules.py,
cancel_schedule.py) share: the call's scheduler, refusals as words, times of day in the caller's zone.

A refusal is a successful tool result that says what was not done and why ("A timer must be at
least 5 seconds away."), so the assistant tells the caller instead of pretending; it is never a
crash and never an error the LLM might retry blindly.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Optional

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from ..dialog.tool_support import ToolReply
from ..dialog.tools import ToolContext, ToolError
from .caller import CallerScheduler, Refused
from .models import Schedule

HHMM = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")
_AWARE: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)


def scheduler(ctx: ToolContext) -> CallerScheduler:
    """The call's scheduler; a ToolError where there is none (a tool run outside a call)."""
    port = ctx.scheduler
    if not isinstance(port, CallerScheduler):
        raise ToolError("scheduling is not available here (no call and caller to schedule for)")
    return port


def refusal(exc: Refused) -> ToolReply:
    return ToolReply(text=f"Not done: {exc.say} Tell the caller this in plain words.",
                     data={"done": False, "refused": exc.say})


def done(port: CallerScheduler, sched: Schedule, what: str) -> ToolReply:
    said = port.describe(sched)
    return ToolReply(text=f"{what}: {said}. Confirm it to the caller in one short sentence.",
                     data={"done": True, "id": sched.id, "kind": sched.kind, "next_due": sched.next_due,
                           "description": said})


def check_time_of_day(v: Optional[str]) -> Optional[str]:
    """HH:MM (24 h) or an ISO 8601 time with an offset, for a pydantic validator."""
    if v is None:
        return v
    v = v.strip()
    if HHMM.match(v):
        return v
    try:
        _AWARE.validate_python(v)
    except ValidationError:
        raise ValueError("give a local time HH:MM (24 h) or an ISO 8601 time with an offset") from None
    return v


def next_time(ctx: ToolContext, value: str) -> datetime:
    """The next moment a checked time (check_time_of_day) names: HH:MM today in the caller's zone, or
    tomorrow if that is past; an ISO time as is."""
    m = HHMM.match(value)
    if m is None:
        return _AWARE.validate_python(value)
    now = ctx.local_now()
    at = now.replace(hour=int(m.group(1)), minute=int(m.group(2)), second=0, microsecond=0)
    return at if at > now else at + timedelta(days=1)


def hhmm(value: str) -> str:
    """HH:MM with two-digit hours (7:00 -> 07:00), as the schedules' `every` wants it."""
    h, mm = value.split(":")
    return f"{int(h):02d}:{mm}"


def reply_or_refusal(fn: Any) -> Any:
    """Run ``fn()``; a Refused becomes the spoken refusal."""
    try:
        return fn()
    except Refused as exc:
        return refusal(exc)
