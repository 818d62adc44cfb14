"""What a conversation's ``respond`` yields (:class:`Say`, tool start/finish, hang-up and transfer
requests) and the per-reply :class:`Timings`: the vocabulary between the dialog and a call."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Union

from .sentences import normalize_for_speech


@dataclass(frozen=True)
class Say:
    text: str  # as the LLM wrote it (history, logs)
    kind: str = "reply"  # reply | filler | apology | goodbye | transfer | greeting
    speech: str = ""  # normalised for TTS

    def __post_init__(self) -> None:
        if not self.speech:
            object.__setattr__(self, "speech", normalize_for_speech(self.text))


@dataclass(frozen=True)
class ToolStarted:
    name: str
    args: Dict[str, Any]


@dataclass(frozen=True)
class ToolFinished:
    name: str
    result: Any
    ok: bool


@dataclass(frozen=True)
class HangupRequested:
    reason: str = "assistant"


@dataclass(frozen=True)
class TransferRequested:
    destination: str


Event = Union[Say, ToolStarted, ToolFinished, HangupRequested, TransferRequested]


@dataclass
class Timings:
    """Seconds from the start of ``respond``; None when it did not happen."""

    first_token: Optional[float] = None
    first_sentence: Optional[float] = None
    total: Optional[float] = None
    llm_rounds: int = 0
    tool_calls: int = 0
    failed: bool = False
    cancelled: bool = False

    def as_dict(self) -> Dict[str, float]:
        """Milliseconds, for logs and metrics: llm_ttft_ms, llm_first_sentence_ms, llm_total_ms."""
        out = {}
        for key, value in (("llm_ttft_ms", self.first_token), ("llm_first_sentence_ms", self.first_sentence),
                           ("llm_total_ms", self.total)):
            if value is not None:
                out[key] = value * 1000.0
        return out

    def __contains__(self, key: str) -> bool:
        return key in self.as_dict()

    def __getitem__(self, key: str) -> float:
        return self.as_dict()[key]
