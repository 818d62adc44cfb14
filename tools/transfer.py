"""Built-in tool: transfer the caller to a destination configured in the profile."""
from typing import Optional

from pydantic import BaseModel, Field

from voiceagent.dialog.tools import ToolContext, ToolError, tool


def _key(name: str) -> str:
    """'The Front-Desk' and 'front desk' name the same target."""
    words = name.lower().replace("_", " ").replace("-", " ").split()
    return " ".join(words[1:] if words[:1] == ["the"] else words)


class TransferArgs(BaseModel):
    target: Optional[str] = Field(default=None, max_length=80,
                                  description="Name of the destination (e.g. 'front desk'); omit for the default one.")


@tool("transfer_call", capability="put the caller through to a person or department",
      available=lambda profile: bool(getattr(profile, "transfer_targets", None)))
def transfer_call(args: TransferArgs, ctx: ToolContext) -> dict:
    """Transfer the caller to a person or department. Tell the caller you are connecting them."""
    targets = dict(getattr(ctx.profile, "transfer_targets", None) or {})
    if not targets:
        raise ToolError("transfers are not available on this line")
    # only a configured name: the LLM never dials a number or URI of its own ("transfer me to 0900...")
    name = args.target or next(iter(targets))
    if name not in targets:
        by_key = {_key(k): k for k in targets}
        name = by_key.get(_key(name), name)
    if name not in targets:
        raise ToolError(f"unknown destination {args.target!r}; choose one of: {', '.join(targets)}")
    ctx.transfer(targets[name])
    return {"ok": True, "transferring_to": name}
