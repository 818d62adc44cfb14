"""opening_hours: tell a caller when the shop is open — a first tool plugin.

Install: put this file in a directory listed in TOOLS_DIRS (keep the built-ins too:
``TOOLS_DIRS=tools,/etc/voiceagent/tools``), enable ``opening_hours`` in a profile's ``tools`` and run
``voiceagent tools reload`` (or ``POST /tools/reload``): every voice worker picks it up, no restart.
Its settings appear in ``voiceagent config``; set them in the environment (OPENING_HOURS_SATURDAY=...).
"""
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, Field

from voiceagent.dialog.tool_support import ToolReply, ToolSettings
from voiceagent.dialog.tools import ToolContext, tool

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class OpeningHoursSettings(ToolSettings):
    """The hours as they are said on the phone (environment variables, like every setting)."""

    title = "opening_hours: when the shop is open (docs/examples/first_tool.py)"

    opening_hours_weekdays: str = Field(default="nine in the morning until six in the evening",
                                        description="Hours Monday to Friday, as they are said ('closed' = closed).")
    opening_hours_saturday: str = Field(default="ten in the morning until two in the afternoon",
                                        description="Hours on Saturday, as they are said ('closed' = closed).")
    opening_hours_sunday: str = Field(default="closed", description="Hours on Sunday, as they are said.")


class Day(BaseModel):
    """The tool's parameters: the LLM sees this as the JSON schema of its arguments."""

    day: Literal["today", "tomorrow", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                 "sunday"] = Field(default="today", description="The day the caller asks about.")


@tool("opening_hours", capability="tell the shop's opening hours", settings=OpeningHoursSettings)
def opening_hours(args: Day, ctx: ToolContext) -> ToolReply:
    """The shop's opening hours on a given day (today, tomorrow or a weekday)."""
    s: OpeningHoursSettings = ctx.settings
    day = args.day
    if day in ("today", "tomorrow"):
        date = ctx.local_now() + timedelta(days=1 if day == "tomorrow" else 0)  # in the line's time zone
        day = DAYS[date.weekday()]
    hours = {"saturday": s.opening_hours_saturday, "sunday": s.opening_hours_sunday}.get(day,
                                                                                        s.opening_hours_weekdays)
    if hours.strip().lower() == "closed":
        sentence = f"On {day.capitalize()} the shop is closed."
    else:
        sentence = f"On {day.capitalize()} the shop is open from {hours}."
    # speak: said to the caller word for word; text: what the LLM reads; data: kept in the call record
    return ToolReply(text=f"The caller was just told: {sentence} Do not repeat it; ask if they need anything else.",
                     speak=sentence, data={"day": day, "hours": hours})
