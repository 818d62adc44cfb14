"""Built-in tool: transfer the caller to a destination configured in the profile."""
from typing import Optional

from pydantic import BaseModel, Field

from voiceagent.dialog.tools import ToolContext, ToolError, tool


class TransferArgs(BaseModel):
    target: Optional[str] = Field(default=None, description="Name of the destination (e.g. 'operator'); omit for the default one.")


@tool("transfer_call", capability="put the caller through to a person or department",
      available=lambda profile: bool(getattr(profile, "transfer_targets", None)))
def transfer_call(args: TransferArgs, ctx: ToolContext) -> dict:
    """Transfer the caller to a person or department. Tell the caller you are connecting them."""
    targets = dict(getattr(ctx.profile, "transfer_targets", None) or {})
    if not targets:
        raise ToolError("transfers are not available on this line")
    name = args.target or next(iter(targets))
    if name not in targets:
        lowered = {k.lower(): k for k in targets}
        name = lowered.get(name.strip().lower(), name)
    if name not in targets:
        raise ToolError(f"unknown destination {args.target!r}; choose one of: {', '.join(targets)}")
    ctx.transfer(targets[name])
    return {"ok": True, "transferring_to": name}
