"""Built-in tool: a recurring briefing call ("call me every weekday at seven with the weather").

A recurring schedule owned by the caller: each run calls them, says the weather (the ``get_weather``
tool, run at answer) or a message, and hangs up.  Times are in the caller's profile zone; the caller
can cancel it by voice (cancel_scheduled).
"""
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from voiceagent.dialog.tools import ToolContext, tool
from voiceagent.records.models import ToolRun
from voiceagent.schedules.tool_kit import HHMM, done, hhmm, reply_or_refusal, scheduler

WEATHER_TOOL = "get_weather"


class BriefingArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    every: Literal["daily", "weekdays", "weekends"] = Field(description="Every day, Monday to Friday, or "
                                                            "Saturday and Sunday.")
    time: str = Field(description="Local time HH:MM (24 h), e.g. 07:00.")
    topic: Literal["weather", "message"] = Field(default="weather", description="weather: the current weather "
                                                 "at the local station; message: say `message`.")
    message: Optional[str] = Field(default=None, max_length=500, description="For topic message: what to say.")

    @field_validator("time")
    @classmethod
    def _time(cls, v: str) -> str:
        if not HHMM.match(v.strip()):
            raise ValueError("must be HH:MM (24 h), e.g. 07:00")
        return hhmm(v.strip())

    @model_validator(mode="after")
    def _message(self) -> "BriefingArgs":
        if self.topic == "message" and not (self.message or "").strip():
            raise ValueError("topic message needs the message to say")
        return self


@tool("schedule_briefing", capability="call the caller regularly (every day, weekday or weekend day) with the "
      "weather or a message")
def schedule_briefing(args: BriefingArgs, ctx: ToolContext):
    """Set up a recurring briefing call to the caller, e.g. 'call me every weekday at seven with the weather'."""
    port = scheduler(ctx)

    def make():
        if args.topic == "weather":
            run = ToolRun(name=WEATHER_TOOL, arguments={},  # the station of TEMPEST_STATION_ID
                          before="Good morning, here is your weather briefing.", after="Have a nice day. Goodbye.")
            sched = port.briefing(every=args.every, time_of_day=args.time, name="weather briefing", tool=run)
        else:
            sched = port.briefing(every=args.every, time_of_day=args.time, name="briefing",
                                  message=(args.message or "").strip())
        return done(port, sched, "Briefing set up")

    return reply_or_refusal(make)
