from voiceagent.dialog.tools import NoArgs, tool


@tool("still_works")
def still_works(args: NoArgs, ctx) -> str:
    """A healthy tool next to broken ones."""
    return "yes"
