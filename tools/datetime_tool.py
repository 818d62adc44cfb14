"""Built-in tool: the current date and time where the caller's profile lives."""
from voiceagent.dialog.tools import NoArgs, ToolContext, tool


@tool("get_datetime", capability="tell the current date, time and weekday")
def get_datetime(args: NoArgs, ctx: ToolContext) -> dict:
    """Get the current local date, time and weekday. Use it whenever the caller asks about the time or date."""
    now = ctx.local_now()
    return {
        "date": now.strftime("%B %d, %Y").replace(" 0", " "),
        "time": now.strftime("%I:%M %p").lstrip("0"),
        "weekday": now.strftime("%A"),
        "timezone": ctx.timezone,
        "iso": now.isoformat(timespec="seconds"),
    }
