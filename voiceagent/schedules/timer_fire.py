"""A timer's run: said into its owner's live call if they are on the line, else (the runner) a call back.

The call the timer was set in comes first; then any other live call of the same person (they hung
up and called again, or are on a callback).  The live-call records are the voice workers' own
(calls/inbox.py): the say command goes to the owning worker's inbox, exactly as ``POST
/calls/{id}/say`` does.  A call that ends or whose worker dies meanwhile is passed over, and with
no call left the runner places the callback (priority high: a person asked for it).

A say that was sent but whose run record was lost (a crash between the two) is said again by the
retried job: a repeated timer notice is harmless, unlike a repeated call, which the idempotency
key prevents.
"""
from __future__ import annotations

import logging
from typing import Iterator, Optional

from ..calls.inbox import CallNotFound, CallStore
from ..calls.inbox_commands import SAY_MAX_CHARS, SayCommand
from .models import Schedule, ScheduleRun
from .owners import normalise, person_of

log = logging.getLogger(__name__)

#: Live-call states in which the dialog will speak a say command (not yet ringing, not ending).
SAYABLE = frozenset({"answered", "confirmed", "answering", "active"})


def live_calls_of(calls: CallStore, sched: Schedule, region: str) -> Iterator[str]:
    """The owner's live calls: the timer's own call first, then any other of theirs."""
    seen = set()
    if sched.origin_call:
        rec = calls.get(sched.origin_call)
        if rec is not None and rec.get("state") in SAYABLE:
            seen.add(sched.origin_call)
            yield sched.origin_call
    if not sched.owner:
        return
    for rec in calls.live_calls():
        cid = rec.get("id", "")
        if cid in seen or rec.get("state") not in SAYABLE:
            continue
        if normalise(person_of(rec), region) == sched.owner:
            seen.add(cid)
            yield cid


def say_timer(calls: CallStore, sched: Schedule, due: int, now: float, region: str) -> Optional[ScheduleRun]:
    """Say the timer into a live call of its owner; the run, or None when they are not on the line."""
    text = (sched.notice or sched.call.message or f"Your timer for {sched.name} is up.")[:SAY_MAX_CHARS]
    for call_id in live_calls_of(calls, sched, region):
        try:
            calls.send_command(call_id, SayCommand(type="say", text=text))
        except CallNotFound:  # ended, or its worker is gone (WorkerGone): try the next one
            continue
        log.info("timer %s said into call %s", sched.id, call_id, extra={"call_id": call_id})
        return ScheduleRun(due=due, fired=now, status="said", call_id=call_id)
    return None
