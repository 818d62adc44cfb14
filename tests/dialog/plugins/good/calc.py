"""Test plugin: typed arguments, a failing tool and a slow one."""
from pydantic import BaseModel, Field

from voiceagent.dialog.tools import NoArgs, ToolContext, tool


class AddArgs(BaseModel):
    a: int = Field(description="first number")
    b: int = Field(description="second number")


@tool()
def add_numbers(args: AddArgs, ctx: ToolContext) -> dict:
    """Add two integers."""
    return {"sum": args.a + args.b}


@tool("explode")
def explode(args: NoArgs, ctx: ToolContext) -> str:
    """Always fails."""
    raise RuntimeError("the database is on fire")


@tool("slow_lookup", slow=True)
def slow_lookup(args: NoArgs, ctx: ToolContext) -> str:
    """A lookup that takes a while."""
    return "found it"
