"""Built-in tool: a timer ("set a timer for ten minutes to check the oven").

When it ends it is said into the caller's call if they are still on the line (this call, or any
call of theirs), else they are called back with it.  It is a schedule of the schedules service,
so it survives restarts; the caller can list and cancel it (list_scheduled, cancel_scheduled).
"""
from pydantic import BaseModel, ConfigDict, Field, model_validator

from voiceagent.dialog.tools import ToolContext, tool
from voiceagent.schedules.caller import TIMER_MAX_SECONDS
from voiceagent.schedules.tool_kit import done, reply_or_refusal, scheduler


class TimerArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    minutes: float = Field(default=0, ge=0, le=24 * 60, description="Minutes (ten minutes = 10).")
    seconds: float = Field(default=0, ge=0, le=TIMER_MAX_SECONDS, description="Seconds, added to the minutes.")
    label: str = Field(min_length=1, max_length=100, description="What it is for, a few words: 'the oven', "
                       "'the laundry'.")

    @model_validator(mode="after")
    def _length(self) -> "TimerArgs":
        total = self.minutes * 60 + self.seconds
        if total <= 0:
            raise ValueError("give the timer's length in minutes and/or seconds")
        if total > TIMER_MAX_SECONDS:
            raise ValueError("a timer can be at most 24 hours")
        return self

    @property
    def total(self) -> float:
        return self.minutes * 60 + self.seconds


@tool("set_timer", capability="set timers (said on this call when they end, or as a call back)")
def set_timer(args: TimerArgs, ctx: ToolContext):
    """Set a timer for the caller. When it ends you tell them on this call, or call them back if they have
    hung up. Use it for 'set a timer for ten minutes', 'remind me in 20 minutes to check the oven'."""
    port = scheduler(ctx)
    return reply_or_refusal(lambda: done(port, port.timer(args.total, args.label.strip()), "Timer set"))
