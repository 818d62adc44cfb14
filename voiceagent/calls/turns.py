"""What one caller turn was: heard, said, what the caller heard of it, tools, timings."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class ToolCall:
    """One tool the conversation ran in a turn; ``ok``/``result`` stay None until it finished."""

    name: str
    arguments: Any = None
    result: Any = None
    ok: Optional[bool] = None
    started_at: float = field(default_factory=time.time)   # wall clock (traces)
    seconds: Optional[float] = None                        # how long it ran, once finished

    @property
    def finished(self) -> bool:
        return self.ok is not None

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "args": self.arguments, "arguments": self.arguments, "result": self.result,
                "ok": self.ok}

    # the dict form demo.py and bench/ read: t["name"], t.get("ok"), t.get("args")
    def __getitem__(self, key: str) -> Any:
        return self.as_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.as_dict().get(key, default)


@dataclass
class Turn:
    """What happened in one caller turn, with its stage timings (ms).  ``at`` is when the turn was made
    (its end of turn, wall clock): the stage timings are laid out from there (traces)."""

    index: int
    heard: str = ""                       # what Whisper heard (after the hallucination filter)
    raw: str = ""                         # Whisper's raw text
    said: List[str] = field(default_factory=list)       # sentences handed to FreeSWITCH
    heard_by_caller: List[str] = field(default_factory=list)
    tools: List[ToolCall] = field(default_factory=list)
    interrupted: bool = False
    timings: Dict[str, float] = field(default_factory=dict)
    speculative_hit: Optional[bool] = None
    kind: str = "speech"                  # speech | dtmf | greeting | command | choice
    ack: str = ""                         # the acknowledgement said because the answer was late
    choice: Any = None                    # records.models.ChoiceAnswer once a choice question is settled
    preemptive: Optional[bool] = None     # the reply came from the LLM stream started at the first pause
    at: float = field(default_factory=time.time)

    def tool_started(self, name: str, arguments: Any) -> None:
        self.tools.append(ToolCall(name, arguments))

    def tool_finished(self, name: str, result: Any, ok: bool) -> None:
        for t in reversed(self.tools):
            if t.name == name and not t.finished:
                t.result, t.ok = result, bool(ok)
                t.seconds = time.time() - t.started_at
                return
