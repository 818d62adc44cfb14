"""Built-in tool: cancel one of the caller's timers, callbacks or briefings ("cancel the oven timer").

By id (from list_scheduled) or by a few words matched against the caller's own items; whatever is
passed, only the caller's own items can be cancelled (another's id is "not found").
"""
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from voiceagent.dialog.tool_support import ToolReply
from voiceagent.dialog.tools import ToolContext, tool
from voiceagent.schedules.tool_kit import scheduler

_KIND_WORDS = {"timer": ("timer",), "callback": ("callback", "call back", "call-back"),
               "briefing": ("briefing", "weather", "every")}


class CancelArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    item_id: Optional[str] = Field(default=None, max_length=64, description="The id list_scheduled gave.")
    what: Optional[str] = Field(default=None, max_length=200, description="Or a few words naming it: "
                                "'the oven timer', 'the callback', 'the weather briefing'.")

    @model_validator(mode="after")
    def _some(self) -> "CancelArgs":
        if not (self.item_id or "").strip() and not (self.what or "").strip():
            raise ValueError("give item_id or what")
        return self


def _matches(port, what: str):
    words = what.lower()
    items = port.mine()
    by_kind = [s for s in items if any(w in words for w in _KIND_WORDS.get(s.kind, ()))]
    by_name = [s for s in (by_kind or items) if s.name.lower() in words or any(
        w in s.name.lower() for w in words.split() if len(w) > 3 and w not in ("timer", "callback", "briefing"))]
    return by_name or by_kind


@tool("cancel_scheduled", capability="cancel the caller's timers, callbacks and briefings")
def cancel_scheduled(args: CancelArgs, ctx: ToolContext):
    """Cancel one of the caller's own timers, callbacks or briefings."""
    port = scheduler(ctx)
    if args.item_id and args.item_id.strip():
        gone = port.cancel(args.item_id.strip())
        if gone is None:
            return ToolReply(text="Nothing was cancelled: the caller has no such item. Use list_scheduled to see "
                             "what they have.", data={"done": False})
    else:
        found = _matches(port, args.what or "")
        if not found:
            return ToolReply(text=f"Nothing was cancelled: {port.summary()} None of it matches "
                             f"'{args.what}'.", data={"done": False})
        if len(found) > 1:
            options = "; ".join(f"{port.describe(s)} = id {s.id}" for s in found)
            return ToolReply(text=f"Nothing was cancelled yet: several match ({options}). Ask the caller which.",
                             data={"done": False, "candidates": [s.id for s in found]})
        gone = port.cancel(found[0].id)
        if gone is None:
            return ToolReply(text="Nothing was cancelled: it has just ended.", data={"done": False})
    said = port.describe(gone)
    return ToolReply(text=f"Cancelled {said}. Tell the caller.", data={"done": True, "id": gone.id,
                                                                      "description": said})
