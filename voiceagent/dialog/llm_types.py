"""What a conversation gets from a chat model, whatever answers: the stream items, the typed error,
and the two Protocols (``ChatModel``, ``ChatStream``) that the litellm client and the in-process
rule-based responder both implement."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, Optional, Protocol, Sequence, Union


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: Dict[str, Any]
    # Set when the arguments could not be decoded; the call is reported back as a failed tool result.
    error: Optional[str] = None
    raw_arguments: str = ""
    from_text: bool = False  # recovered from JSON written in the message text

    def as_message_call(self) -> dict:
        """The ``tool_calls`` entry of the assistant message that goes back to the LLM."""
        args = self.raw_arguments if self.error else json.dumps(self.arguments)
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": args}}


class LlmError(Exception):
    """The LLM did not answer usefully. ``kind``: timeout, http, connection, bad_response."""

    def __init__(self, kind: str, message: str, status: Optional[int] = None) -> None:
        super().__init__(f"{kind}: {message}" + (f" (HTTP {status})" if status else ""))
        self.kind = kind
        self.status = status


StreamItem = Union[TextDelta, ToolCall]


class ChatStream(Protocol):
    """One reply being written: iterate for items (raises :class:`LlmError`), ``cancel()`` from any greenlet."""

    started_at: float
    first_token_at: Optional[float]

    def cancel(self) -> None: ...

    def __iter__(self) -> Iterator[StreamItem]: ...


class ChatModel(Protocol):
    """What the conversation (and the warm start) call: one streamed completion per LLM round."""

    def stream(self, messages: Sequence[dict], tools: Optional[Sequence[dict]] = None, *,
               recover_names: Optional[Iterable[str]] = None) -> ChatStream: ...


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:16]


def decode_call(call_id: str, name: str, raw: str) -> ToolCall:
    """A tool call from its streamed name and JSON arguments; bad arguments become ``error``."""
    raw = raw or ""
    if not raw.strip():
        return ToolCall(call_id, name, {}, raw_arguments="{}")
    try:
        args = json.loads(raw)
    except json.JSONDecodeError as exc:
        return ToolCall(call_id, name, {}, error=f"arguments are not valid JSON ({exc.msg} at position {exc.pos})",
                        raw_arguments=raw)
    except ValueError as exc:  # valid JSON that Python refuses, e.g. an integer of over 4300 digits
        return ToolCall(call_id, name, {}, error=f"arguments are not usable JSON ({str(exc)[:200]})",
                        raw_arguments=raw)
    if not isinstance(args, dict):
        return ToolCall(call_id, name, {}, error="arguments must be a JSON object", raw_arguments=raw)
    return ToolCall(call_id, name, args, raw_arguments=raw)
