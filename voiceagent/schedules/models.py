"""What a schedule is: when it runs (once or recurring, in a zone), what call it places, its runs.

Strict like the call request (unknown fields are errors) and each check is on the field it is
about, so a 422 names ``when.cron`` or ``timezone`` rather than the whole body.  Checks that need
the clock (a time in the past) are in :mod:`timing`, which takes ``now``.
"""
from __future__ import annotations

import re
from datetime import date
from typing import List, Literal, Optional
from zoneinfo import ZoneInfo

from croniter import croniter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ..records.models import CallRequest, Outcome
from ..zones import iana_zone

_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_KINDS = ("at", "in_seconds", "every", "cron")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class When(_Strict):
    """Exactly one of: ``at`` or ``in_seconds`` (one-time), ``every`` + ``time`` or ``cron`` (recurring)."""

    at: Optional[AwareDatetime] = Field(default=None, description="One-time: an ISO 8601 time with an offset "
                                        "or Z, e.g. 2026-05-04T10:00:00+02:00.")
    in_seconds: Optional[int] = Field(default=None, ge=1, le=366 * 86400,
                                      description="One-time: this many seconds after the schedule is saved.")
    every: Optional[Literal["daily", "weekdays", "weekends"]] = Field(
        default=None, description="Recurring: every day, Monday to Friday, or Saturday and Sunday, at `time`.")
    time: Optional[str] = Field(default=None, validate_default=True,
                                description="With `every`: the local time HH:MM (24 h) in the schedule's timezone.")
    cron: Optional[str] = Field(default=None, max_length=200, description="Recurring: a 5-field cron expression "
                                "(minute hour day-of-month month day-of-week) in the schedule's timezone.")

    @field_validator("in_seconds", "every", "cron")
    @classmethod
    def _only_one(cls, v: object, info: ValidationInfo) -> object:
        if v is not None:
            given = [k for k in _KINDS if k != info.field_name and info.data.get(k) is not None]
            if given:
                raise ValueError(f"give only one of at, in_seconds, every, cron (also given: {', '.join(given)})")
        return v

    @field_validator("time")
    @classmethod
    def _time(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        every = info.data.get("every")
        if v is None:
            if every is not None:
                raise ValueError("required with every (HH:MM)")
            return v
        if every is None:
            raise ValueError("only with every (cron has its own hour and minute)")
        if not _HHMM.match(v):
            raise ValueError("must be HH:MM, 00:00 to 23:59")
        return v

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        v = " ".join(v.split())
        if len(v.split(" ")) != 5 or not croniter.is_valid(v):
            raise ValueError("must be a valid 5-field cron expression, e.g. '0 7 * * 1-5'")
        return v

    @model_validator(mode="after")
    def _some(self) -> "When":
        if all(getattr(self, k) is None for k in _KINDS):
            raise ValueError("give one of at, in_seconds (one-time), every with time, or cron (recurring)")
        return self

    @property
    def recurring(self) -> bool:
        return self.every is not None or self.cron is not None


class ScheduleSpec(_Strict):
    """A schedule as a client writes it (POST /schedules; PATCH merges into it)."""

    name: str = Field(min_length=1, max_length=200, description="What it is for, e.g. 'weekday weather'.")
    when: When = Field(description="When the call is placed.")
    timezone: Optional[str] = Field(default=None, validate_default=True, max_length=64,
                                    description="IANA zone the times are in, e.g. Europe/Berlin; required "
                                                "for every/cron (runs follow its daylight saving time).")
    until: Optional[date] = Field(default=None, description="Last day (in the schedule's zone) a run may fall on.")
    max_runs: Optional[int] = Field(default=None, ge=1, le=1_000_000,
                                    description="Stop after this many runs (missed runs do not count).")
    paused: bool = Field(default=False, description="A paused schedule places no calls until resumed.")
    call: CallRequest = Field(description="The call each run places (POST /calls' fields, plus `tool`, "
                                          "`deadline_seconds` ...); its idempotency key is set per run.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        when = info.data.get("when")
        if v is None:
            if when is not None and when.recurring:
                raise ValueError("required for a recurring schedule (an IANA name such as Europe/Berlin)")
            return v
        return iana_zone(v)

    @field_validator("call")
    @classmethod
    def _no_key(cls, v: CallRequest) -> CallRequest:
        if v.idempotency_key is not None:
            raise ValueError("idempotency_key is set by the schedule for each run; leave it out")
        return v

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or "UTC")


#: What a schedule is for: ``schedule`` (made through the API), or made by a caller's voice through a tool:
#: a ``timer`` (said into the caller's live call, else a call back), a ``callback``, a recurring ``briefing``.
ScheduleKind = Literal["schedule", "timer", "callback", "briefing"]


class Schedule(ScheduleSpec):
    """A stored schedule: the spec plus where its series stands (and, for one a caller made by voice,
    whose it is: tools list and cancel only the caller's own)."""

    id: str = Field(description="The schedule's id.")
    created: float = Field(description="Wall-clock seconds it was created.")
    updated: float = Field(description="Wall-clock seconds of the last change.")
    anchor: float = Field(description="When `when` was last set: `in_seconds` counts from here.")
    runs: int = Field(default=0, ge=0, description="Runs fired so far (placed or refused; missed ones not).")
    last_due: Optional[int] = Field(default=None, description="Due time (Unix seconds) of the latest run handled.")
    next_due: Optional[int] = Field(default=None, description="Due time (Unix seconds) of the next run; null "
                                    "when the series has ended.")
    state: Literal["active", "paused", "finished"] = Field(default="active", description="finished: no run left.")
    owner: Optional[str] = Field(default=None, max_length=64, description="The caller's number (normalised) "
                                 "for a schedule made by voice through a tool; null for one made through the API.")
    kind: ScheduleKind = Field(default="schedule", description="schedule (API), or timer, callback, briefing "
                               "(made by a caller through a tool).")
    origin_call: Optional[str] = Field(default=None, max_length=64, description="The call a timer was set in: "
                                       "it is said there if that call is still live when it fires.")
    notice: Optional[str] = Field(default=None, max_length=1000, description="What a timer says into the owner's "
                                  "live call when it fires (else `call` calls them back with its message).")


RunStatus = Literal["placed", "said", "refused", "failed", "missed"]


class ScheduleRun(_Strict):
    """One run of a schedule: when it was due, when it fired, the call it placed and how that went."""

    due: int = Field(description="Unix seconds the run was due.")
    fired: Optional[float] = Field(default=None, description="Wall-clock seconds the call was submitted.")
    status: RunStatus = Field(description="placed: a call was submitted; said: a timer was said into the "
                              "owner's live call (call_id); refused: the dial policy refused it; "
                              "failed: it could not be submitted; missed: found too late (everything was down).")
    call_id: Optional[str] = Field(default=None, description="The call it placed (GET /calls/{id}).")
    error: str = Field(default="", description="Why it was refused, failed or missed.")
    skipped: int = Field(default=0, ge=0, description="For a missed run: further runs the outage skipped.")
    call_state: Optional[str] = Field(default=None, description="The call record's state, read when listed.")
    outcome: Optional[Outcome] = Field(default=None, description="The call's outcome, read when listed.")


class ScheduleEdit(_Strict):
    """PATCH /schedules/{id}: the fields to change (null clears until/max_runs/timezone)."""

    name: Optional[str] = Field(default=None, min_length=1, max_length=200, description="New name.")
    when: Optional[When] = Field(default=None, description="New timing (in_seconds counts from now).")
    timezone: Optional[str] = Field(default=None, max_length=64, description="New IANA zone.")
    until: Optional[date] = Field(default=None, description="New last day, or null for none.")
    max_runs: Optional[int] = Field(default=None, ge=1, le=1_000_000, description="New limit, or null for none.")
    paused: Optional[bool] = Field(default=None, description="true pauses, false resumes.")
    call: Optional[CallRequest] = Field(default=None, description="New call template (replaces the old one).")


class ScheduleView(BaseModel):
    """A schedule, its next runs and its run history (newest first)."""

    schedule: Schedule
    next_runs: List[str] = Field(default_factory=list, description="Upcoming due times, ISO 8601 in the zone.")
    runs: List[ScheduleRun] = Field(default_factory=list, description="Run history, newest first.")


class SchedulePage(BaseModel):
    """GET /schedules: oldest first; ``next_cursor`` is null on the last page."""

    schedules: List[Schedule]
    next_cursor: Optional[str] = None


class ScheduleQuery(_Strict):
    """GET /schedules: the page."""

    limit: int = Field(default=50, ge=1, le=100, description="Page size, at most 100.")
    cursor: Optional[str] = Field(default=None, max_length=200, description="next_cursor of the previous page.")


class ViewQuery(_Strict):
    """GET /schedules/{id}: how much to show."""

    next: int = Field(default=5, ge=0, le=50, description="How many upcoming runs to list (0-50).")
    history: int = Field(default=50, ge=0, le=1000, description="How many past runs to list, newest first.")
