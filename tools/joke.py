"""Built-in tool: a short, clean joke from a small list; which one depends on the call and the clock
(deterministic for tests), and a call does not hear the same one twice until the list is used up."""
import hashlib

from voiceagent.dialog.tool_support import ToolReply
from voiceagent.dialog.tools import NoArgs, ToolContext, tool

JOKES = (
    "Why don't scientists trust atoms? Because they make up everything.",
    "I told my wife she was drawing her eyebrows too high. She looked surprised.",
    "Why did the scarecrow win an award? Because he was outstanding in his field.",
    "What do you call a fake noodle? An impasta.",
    "Why don't skeletons fight each other? They don't have the guts.",
    "I'm reading a book about anti-gravity. It's impossible to put down.",
    "Why did the bicycle fall over? Because it was two tired.",
    "What do you call a bear with no teeth? A gummy bear.",
    "Why can't a nose be twelve inches long? Because then it would be a foot.",
    "How does a penguin build its house? Igloos it together.",
    "Why did the coffee file a police report? It got mugged.",
    "What did the ocean say to the beach? Nothing, it just waved.",
)
TOLD = "jokes_told"  # ctx.extra key: indexes already told on this call


def pick(ctx: ToolContext) -> int:
    told = ctx.extra.setdefault(TOLD, [])
    if len(told) >= len(JOKES):
        told.clear()
    seed = f"{ctx.call_id}|{ctx.clock.now():%Y-%m-%dT%H:%M}|{len(told)}"
    start = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:4], "big") % len(JOKES)
    index = next(i % len(JOKES) for i in range(start, start + len(JOKES)) if i % len(JOKES) not in told)
    told.append(index)
    return index


@tool("tell_joke", capability="tell a short, clean joke")
def tell_joke(args: NoArgs, ctx: ToolContext) -> ToolReply:
    """Tell the caller a short, clean joke. Use it when the caller asks for a joke. The joke is read to the
    caller as is: do not tell it again or explain it."""
    index = pick(ctx)
    return ToolReply(text="A joke was told to the caller.", speak=JOKES[index], data={"joke": index})
