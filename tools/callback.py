"""Built-in tool: call the caller back later ("call me back in an hour about the invoice").

The call back opens with its reason and the conversation is told why it called.  Calling another
number than the caller's is only done when the dial policy allows it.
"""
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from voiceagent.dialog.tools import ToolContext, tool
from voiceagent.schedules.tool_kit import check_time_of_day, done, next_time, reply_or_refusal, scheduler


class CallbackArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reason: str = Field(min_length=1, max_length=300, description="Why to call back, as the caller put it: "
                        "'the invoice', 'to go over the offer'.")
    in_minutes: Optional[float] = Field(default=None, gt=0, le=7 * 24 * 60,
                                        description="Call back this many minutes from now (an hour = 60).")
    at: Optional[str] = Field(default=None, description="Or: the local time HH:MM (24 h; today, or tomorrow if "
                              "past), or an ISO 8601 time with an offset.")
    number: Optional[str] = Field(default=None, max_length=40, description="Only if the caller asks to call "
                                  "another number; leave out to call the caller back.")

    @field_validator("at")
    @classmethod
    def _at(cls, v: Optional[str]) -> Optional[str]:
        return check_time_of_day(v)

    @model_validator(mode="after")
    def _one(self) -> "CallbackArgs":
        if (self.in_minutes is None) == (self.at is None):
            raise ValueError("give exactly one of in_minutes or at")
        return self


@tool("schedule_callback", capability="call the caller back later, at a time or after a delay they choose")
def schedule_callback(args: CallbackArgs, ctx: ToolContext):
    """Schedule a phone call back to the caller ('call me back in an hour', 'call me at 3 pm about the
    invoice'). The call back starts with the reason."""
    port = scheduler(ctx)

    def make():
        if args.at is not None:
            sched = port.callback(reason=args.reason.strip(), at=next_time(ctx, args.at), number=args.number)
        else:
            assert args.in_minutes is not None
            sched = port.callback(reason=args.reason.strip(), delay=args.in_minutes * 60, number=args.number)
        return done(port, sched, "Call back scheduled")

    return reply_or_refusal(make)
