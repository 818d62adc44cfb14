"""The scheduler a call's tools use (``ctx.scheduler``): timers, callbacks and briefings of one caller.

Everything made here is a schedule of the schedules service (persisted, armed as an RQ job, so it
survives restarts) owned by the caller's number (:mod:`owners`); listing and cancelling see only
that owner's schedules, whatever id the LLM passes: another caller's id is "not found", exactly as
a made-up one.  The owner comes from the call, never from the tool's arguments.

A refusal (the dial policy, a time out of bounds, too many items, no caller number) is raised as
:class:`Refused` carrying a sentence the tool hands back for the assistant to say; nothing here
raises anything else for a caller's request.
"""
from __future__ import annotations

import logging
import re
import time
from datetime import datetime
from typing import Any, Callable, List, Optional, Union

from pydantic import ValidationError

from ..records.dial_policy import DialRefused
from ..records.models import ToolRun
from . import spoken
from .models import Schedule, ScheduleKind, ScheduleSpec
from .owners import normalise
from .service import Schedules, setting
from .timing import TimingError

log = logging.getLogger(__name__)

TIMER_MAX_SECONDS = 24 * 3600
CALLBACK_MAX_SECONDS = 7 * 86400
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class Refused(Exception):
    """The request is not done; ``say`` tells the caller why, in words."""

    def __init__(self, say: str) -> None:
        super().__init__(say)
        self.say = say


class CallerScheduler:
    """One call's view of the schedules: what its caller (``number``) may make, list and cancel."""

    def __init__(self, schedules: Union[Schedules, Callable[[], Schedules]], *, number: str, call_id: str = "",
                 profile: Optional[str] = None, timezone: str = "UTC", min_seconds: int = 5, max_items: int = 20,
                 region: str = "US", now: Callable[[], float] = time.time) -> None:
        self._schedules = schedules
        self.owner = normalise(number, region)
        self.call_id = call_id
        self.profile = profile if profile and _PROFILE_NAME.match(profile) else None
        self.timezone = timezone
        self.min_seconds = min_seconds
        self.max_items = max_items
        self.now = now

    @classmethod
    def for_call(cls, schedules: Union[Schedules, Callable[[], Schedules]], s: Any, *, number: str,
                 call_id: str = "", profile: Optional[str] = None, timezone: str = "UTC") -> "CallerScheduler":
        return cls(schedules, number=number, call_id=call_id, profile=profile, timezone=timezone,
                   min_seconds=int(setting(s, "timer_min_seconds")), max_items=int(setting(s, "caller_schedules_max")),
                   region=str(getattr(s, "dial_default_region", "US")).upper())

    @property
    def sv(self) -> Schedules:
        if not isinstance(self._schedules, Schedules):
            self._schedules = self._schedules()
        return self._schedules

    # ------------------------------------------------------------------ making
    def timer(self, seconds: float, label: str, message: Optional[str] = None) -> Schedule:
        """A timer ``seconds`` from now: said into the caller's live call when it ends, else a call back."""
        owner = self._owner()
        seconds = int(round(seconds))
        self._bounded(seconds, TIMER_MAX_SECONDS, "A timer")
        notice = message or f"Your timer for {label} is up."
        call = {"to": owner, "message": f"Hello, this is your assistant calling about your timer. {notice}",
                "instructions": f"You are calling the person back because a timer they set on an earlier call "
                                f"has ended: {label}. You have told them; help if they ask, then say goodbye."}
        return self._make("timer", label, {"in_seconds": seconds}, call, notice=notice, origin_call=self.call_id)

    def callback(self, *, reason: str, at: Optional[datetime] = None, delay: Optional[float] = None,
                 number: Optional[str] = None) -> Schedule:
        """A call at ``at`` (aware) or ``delay`` seconds from now that opens with ``reason``; to the caller's
        own number unless ``number`` is given (then the dial policy decides)."""
        owner = self._owner()
        if (at is None) == (delay is None):
            raise Refused("Tell me either when or in how long to call back.")
        seconds = delay if delay is not None else at.timestamp() - self.now()  # type: ignore[union-attr]
        self._bounded(int(round(seconds)), CALLBACK_MAX_SECONDS, "A callback")
        to = owner
        if number is not None:
            to = normalise(number, self.sv.dispatcher.client.policy.default_region) or ""
            if not to:
                raise Refused("That is not a number I can call.")
        if to == owner:
            message = f"Hello, this is your assistant calling you back, as you asked: {reason}."
            instructions = (f"You are calling the person back because they asked you to on an earlier call. "
                            f"The reason: {reason}. Start from it and help them with it.")
        else:
            message = f"Hello, this is an assistant calling on behalf of {owner}: {reason}."
            instructions = (f"You are calling on behalf of {owner}, who asked for this call. The reason: "
                            f"{reason}. Deliver it and help if asked.")
        when = {"at": at.isoformat()} if at is not None else {"in_seconds": int(round(seconds))}
        return self._make("callback", reason, when, {"to": to, "message": message, "instructions": instructions})

    def briefing(self, *, every: str, time_of_day: str, name: str, tool: Optional[ToolRun] = None,
                 message: Optional[str] = None, timezone: Optional[str] = None) -> Schedule:
        """A recurring call (``every`` daily|weekdays|weekends at ``time_of_day`` HH:MM in the caller's zone)
        that says ``tool``'s result (e.g. get_weather) or ``message``, then hangs up."""
        owner = self._owner()
        if tool is None and not message:
            raise Refused("Tell me what the briefing should say.")
        call: dict = {"to": owner}
        if tool is not None:
            call["tool"] = tool.model_dump()
        else:
            call["message"] = message
        return self._make("briefing", name, {"every": every, "time": time_of_day}, call,
                          timezone=timezone or self.timezone)

    # ------------------------------------------------------------------ reading, cancelling
    def mine(self) -> List[Schedule]:
        """The caller's items still to come, soonest first (none without a caller number)."""
        if self.owner is None:
            return []
        items = [s for s in self.sv.store.owned(self.owner) if s.state != "finished"]
        return sorted(items, key=lambda s: s.next_due or 0)

    def get(self, item_id: str) -> Optional[Schedule]:
        """One of the caller's items; None for anything else (another's, a finished one, nonsense)."""
        if self.owner is None or not item_id or len(item_id) > 64:
            return None
        s = self.sv.store.get(item_id.strip())
        if s is None or s.owner != self.owner or s.state == "finished":
            return None
        return s

    def cancel(self, item_id: str) -> Optional[Schedule]:
        """Delete one of the caller's items (its pending run never fires); None if it is not theirs."""
        s = self.get(item_id)
        if s is None:
            return None
        self.sv.delete(s.id)
        log.info("caller cancelled %s %s", s.kind, s.id, extra={"call_id": self.call_id})
        return s

    def summary(self) -> str:
        return spoken.summary(self.mine(), self.now())

    def describe(self, s: Schedule) -> str:
        return spoken.describe(s, self.now())

    # ------------------------------------------------------------------ internals
    def _owner(self) -> str:
        if self.owner is None:
            raise Refused("I can't schedule anything on this call: I don't have your phone number.")
        return self.owner

    def _bounded(self, seconds: int, most: int, what: str) -> None:
        if seconds < self.min_seconds:
            raise Refused(f"{what} must be at least {self.min_seconds} seconds away.")
        if seconds > most:
            longest = "24 hours" if most == TIMER_MAX_SECONDS else f"{most // 86400} days"
            raise Refused(f"{what} can be at most {longest} away.")

    def _make(self, kind: ScheduleKind, name: str, when: dict, call: dict, *, timezone: Optional[str] = None,
              notice: Optional[str] = None, origin_call: Optional[str] = None) -> Schedule:
        owner = self._owner()
        if len(self.mine()) >= self.max_items:
            raise Refused(f"You already have {self.max_items} timers, callbacks and briefings; cancel one first.")
        if self.profile:
            call["profile"] = self.profile
        try:
            spec = ScheduleSpec.model_validate({"name": name[:200], "when": when, "call": call,
                                                "timezone": timezone or self.timezone})
            return self.sv.create(spec, self.now(), owner=owner, kind=kind, notice=notice,
                                  origin_call=origin_call or None)
        except DialRefused as exc:
            raise Refused(f"I'm not allowed to call that number ({exc.message}).") from None
        except TimingError as exc:
            raise Refused(f"That time does not work: {exc.message}.") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise Refused(f"I can't schedule that ({where}: {first['msg']}).") from None


class SchedulerHook:
    """The voice worker's DialogKit context hook: gives each call's ToolContext its ``scheduler``.

    The schedules service (a Redis pool, the dispatcher) is built from the worker's settings on
    first use, so calls that never schedule anything (and the warm-up) cost nothing."""

    def __init__(self, settings: Any, schedules: Optional[Schedules] = None) -> None:
        self.settings = settings
        self._sv = schedules

    def schedules(self) -> Schedules:
        if self._sv is None:
            self._sv = Schedules.from_settings(self.settings)
        return self._sv

    def __call__(self, ctx: Any) -> None:
        number = ctx.callee if ctx.direction == "outbound" else ctx.caller
        ctx.scheduler = CallerScheduler.for_call(self.schedules, self.settings, number=number, call_id=ctx.call_id,
                                                 profile=getattr(ctx.profile, "name", None), timezone=ctx.timezone)
