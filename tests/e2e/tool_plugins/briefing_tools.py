"""Deterministic tools for the tool-at-answer tests (TOOLS_DIRS points here)."""
import gevent
from pydantic import BaseModel, Field

from voiceagent.dialog.tools import NoArgs, ToolContext, tool


class City(BaseModel):
    city: str = Field(min_length=1, max_length=40, description="The city.")


@tool("weather_report")
def weather_report(args: City, ctx: ToolContext) -> dict:
    """The weather in a city today."""
    return {"summary": f"In {args.city} it is sunny and warm.", "temp_c": 20}


@tool("crash_report")
def crash_report(args: NoArgs, ctx: ToolContext) -> dict:
    """A tool whose backend is broken."""
    raise RuntimeError("backend exploded")


@tool("slow_report")
def slow_report(args: NoArgs, ctx: ToolContext) -> str:
    """A tool slower than TOOL_TIMEOUT."""
    gevent.sleep(30)
    return "too late"


@tool("odd_report")
def odd_report(args: NoArgs, ctx: ToolContext) -> dict:
    """A tool whose result holds values JSON has no form for."""
    return {"at": ctx.local_now(), "thing": object.__new__(City), "text": "All is well."}
