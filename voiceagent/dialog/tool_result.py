"""What one tool run gave back (``ToolRegistry.run``): its value or error, how long it took, and the
words or text a :class:`~voiceagent.dialog.tool_support.ToolReply` asked for."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class ToolResult:
    name: str
    ok: bool
    value: Any  # the tool's return value, or {"error": "..."}
    seconds: float = 0.0
    speak: Optional[str] = None   # a ToolReply's words to say verbatim
    text: Optional[str] = None    # a ToolReply's text for the LLM

    @property
    def content(self) -> str:
        """The ``tool`` message content the LLM receives."""
        if self.text is not None:
            return self.text
        if isinstance(self.value, str):
            return self.value
        return json.dumps(self.value, ensure_ascii=False, default=str)
