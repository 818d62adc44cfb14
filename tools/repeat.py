"""Built-in tool: say words back exactly as given (a caller checking a spelling, a number, a message)."""
from pydantic import BaseModel, Field, field_validator

from voiceagent.dialog.tool_support import ToolReply
from voiceagent.dialog.tools import ToolContext, tool

MAX_CHARS = 300  # about twenty seconds of speech


class RepeatArgs(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_CHARS, description="The exact words to say to the caller.")

    @field_validator("text")
    @classmethod
    def _speakable(cls, v: str) -> str:
        v = " ".join("".join(ch for ch in v if ch.isprintable() or ch.isspace()).split())
        if not any(ch.isalnum() for ch in v):
            raise ValueError("nothing to say: the text has no letters or digits")
        return v


@tool("repeat_after_me", capability="repeat back, word for word, something the caller asks to hear")
def repeat_after_me(args: RepeatArgs, ctx: ToolContext) -> ToolReply:
    """Say the given words to the caller exactly, word for word. Use it when the caller asks you to repeat
    or say something back. The words are read to the caller as given: do not say them again."""
    return ToolReply(text="Said to the caller word for word.", speak=args.text, data={"chars": len(args.text)})
