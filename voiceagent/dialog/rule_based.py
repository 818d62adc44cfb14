"""The rule-based responder: answers without a model (``LLM_BASE_URL`` unset or ``rule-based``).

Time questions go through get_datetime, goodbyes through hang_up, "operator" through transfer_call;
anything else gets one fixed sentence.  :class:`RuleBasedLlm` serves the rules in process behind the
same :class:`~.llm_types.ChatModel` seam as the litellm client: the reply is streamed word by word
(so sentence splitting and TTS work as with a model), tool calls come after the text.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from .llm_types import StreamItem, TextDelta, ToolCall, new_call_id

FALLBACK = ("I'm a demonstration assistant without a language model. "
            "I can tell you the time, or connect you to someone. How can I help?")


@dataclass(frozen=True)
class Answer:
    """One reply of the rules: text to speak, then tool calls ``(name, arguments)``."""

    text: str = ""
    tool_calls: Tuple[Tuple[str, Dict[str, Any]], ...] = field(default_factory=tuple)


def rule_based_answer(messages: Sequence[dict], tool_names: Iterable[str]) -> Answer:
    """The rules: what to say to the conversation so far, given the tools on offer."""
    names = set(tool_names)
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        try:
            result = json.loads(last.get("content") or "{}")
        except ValueError:
            result = {}
        if isinstance(result, dict) and "time" in result:
            return Answer(f"It is {result['time']} on {result.get('weekday', '')} {result.get('date', '')}."
                          .replace("  ", " "))
        return Answer("Done. Is there anything else I can help you with?")
    user = ""
    for m in reversed(messages):
        if m.get("role") == "user":
            user = str(m.get("content") or "").lower()
            break
    if re.search(r"\b(time|date|day is it)\b", user) and "get_datetime" in names:
        return Answer(tool_calls=(("get_datetime", {}),))
    if re.search(r"\b(bye|goodbye|hang up)\b", user) and "hang_up" in names:
        return Answer("Goodbye, and thank you for calling.", (("hang_up", {}),))
    if re.search(r"\b(operator|human|agent|transfer)\b", user) and "transfer_call" in names:
        return Answer("Let me connect you.", (("transfer_call", {}),))
    return Answer(FALLBACK)


def words(text: str) -> List[str]:
    """Text as a model streams it: one piece per word, with its trailing space."""
    return re.findall(r"\S+\s*|\s+", text) if text else []


class RuleBasedStream:
    """A reply of the rules as a :class:`~.llm_types.ChatStream`; nothing blocks, so ``cancel`` only stops
    the iteration."""

    def __init__(self, answer: Answer, clock: Callable[[], float]) -> None:
        self.started_at = clock()
        self.first_token_at: Optional[float] = None
        self.cancelled = False
        self._answer = answer
        self._clock = clock

    def cancel(self) -> None:
        self.cancelled = True

    def __iter__(self) -> Iterator[StreamItem]:
        items: List[StreamItem] = [TextDelta(w) for w in words(self._answer.text)]
        items += [ToolCall(new_call_id(), name, dict(args), raw_arguments=json.dumps(args))
                  for name, args in self._answer.tool_calls]
        for item in items:
            if self.cancelled:
                return
            if self.first_token_at is None:
                self.first_token_at = self._clock()
            yield item


class RuleBasedLlm:
    """The rules as a :class:`~.llm_types.ChatModel`, in process (no server, no litellm)."""

    base_url = ""  # nothing to reach: never "a server on this machine" for the prompt-cache warm-up
    model = "rule-based"

    def __init__(self, rules: Callable[[Sequence[dict], Iterable[str]], Answer] = rule_based_answer, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rules = rules
        self.clock = clock

    def stream(self, messages: Sequence[dict], tools: Optional[Sequence[dict]] = None, *,
               recover_names: Optional[Iterable[str]] = None) -> RuleBasedStream:
        names = [t.get("function", {}).get("name", "") for t in tools or []]
        return RuleBasedStream(self.rules(list(messages), names), self.clock)

    def stop(self) -> None:
        """Nothing to stop (kept so a kit can be closed the same way whatever answers)."""
