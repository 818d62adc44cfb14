"""Built-in tool: end the call once the goodbye has been played."""
from voiceagent.dialog.tools import NoArgs, ToolContext, tool


@tool("hang_up", capability="end the call")
def hang_up(args: NoArgs, ctx: ToolContext) -> dict:
    """End the phone call. Say goodbye in the same reply; the call ends after it has been spoken.
    Use it when the caller says goodbye or asks to end the call."""
    ctx.hangup("assistant")
    return {"ok": True, "note": "the call ends after your goodbye"}
