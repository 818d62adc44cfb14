"""Built-in tool: what the caller has scheduled ("what timers do I have?").

Only the caller's own timers, callbacks and briefings, soonest first, as one sentence to say:
"You have a timer for the oven in 8 minutes and a callback at 3 pm about the invoice."
"""
from voiceagent.dialog.tool_support import ToolReply
from voiceagent.dialog.tools import NoArgs, ToolContext, tool
from voiceagent.schedules.tool_kit import scheduler


@tool("list_scheduled", capability="tell the caller which timers, callbacks and briefings they have")
def list_scheduled(args: NoArgs, ctx: ToolContext):
    """List the caller's own timers, callbacks and recurring briefings."""
    port = scheduler(ctx)
    items = port.mine()
    sentence = port.summary()
    ids = "; ".join(f"{port.describe(s)} = id {s.id}" for s in items)
    text = sentence + (f" (For cancel_scheduled: {ids}.)" if ids else "") + " Tell the caller in your own words."
    return ToolReply(text=text, data={"summary": sentence, "items": [
        {"id": s.id, "kind": s.kind, "description": port.describe(s), "next_due": s.next_due} for s in items]})
