"""Tool calls that small models write as JSON in the message text instead of ``tool_calls``.

Text that may start such JSON is held back (not spoken) until the end of the stream; if it parses
as a call of an enabled tool it becomes a :class:`ToolCall`, otherwise it is released as text.
"""
from __future__ import annotations

import json
import logging
import re
from typing import Any, List, Tuple

from .llm_types import ToolCall, decode_call as _decode_call, new_call_id as _new_id

log = logging.getLogger(__name__)

_TRIGGERS = ("```", "<tool_call>", "{")


class TextToolRecovery:
    """Holds back text that may be a JSON tool call, and decides at the end of the stream."""

    def __init__(self, names: set) -> None:
        self.names = names
        self._pending = ""  # not yet released (may be the start of a trigger)
        self._held = ""  # from a trigger on: released only if it is not a tool call

    def feed(self, delta: str) -> List[str]:
        if not self.names:
            return [delta]
        if self._held:
            self._held += delta
            return []
        text = self._pending + delta
        self._pending = ""
        positions = [i for i in (text.find(t) for t in _TRIGGERS) if i >= 0]
        if positions:
            cut = min(positions)
            if text[cut] == "{":  # a list of calls: "[ {...}, {...} ]"
                m = re.search(r"\[\s*$", text[:cut])
                cut = m.start() if m else cut
            self._held = text[cut:]
            out = text[:cut]
        else:
            keep = _partial_trigger_suffix(text)
            out, self._pending = text[:len(text) - keep], text[len(text) - keep:]
        return [out] if out else []

    def finish(self) -> Tuple[str, List[ToolCall]]:
        held, pending = self._held, self._pending
        self._held = self._pending = ""
        if not held:
            return pending, []
        calls, rest = extract_text_tool_calls(held, self.names)
        if not calls:
            return held + pending, []
        log.info("recovered %d tool call(s) written as text: %s", len(calls), [c.name for c in calls])
        return (rest + pending) if (rest + pending).strip() else "", calls


def _partial_trigger_suffix(text: str) -> int:
    m = re.search(r"\[\s*$", text)  # may open a list of calls
    best = len(text) - m.start() if m else 0
    for trig in ("```", "<tool_call>"):
        for n in range(min(len(trig) - 1, len(text)), 0, -1):
            if text.endswith(trig[:n]):
                best = max(best, n)
                break
    return best


_TAG = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_FENCE = re.compile(r"```(?:json|tool_call|tool)?\s*(.*?)\s*(?:```|$)", re.S)


def extract_text_tool_calls(text: str, names: set) -> Tuple[List[ToolCall], str]:
    """Find tool calls of ``names`` written as JSON in ``text``; return them and the remaining text."""
    calls: List[ToolCall] = []
    spans: List[Tuple[int, int]] = []
    for pattern in (_TAG, _FENCE):
        for m in pattern.finditer(text):
            found = _calls_from_json_text(m.group(1), names)
            if found:
                calls.extend(found)
                spans.append(m.span())
        if calls:
            break
    if not calls:
        decoder = json.JSONDecoder()
        i = 0
        while i < len(text):
            if text[i] in "{[":
                try:
                    obj, end = decoder.raw_decode(text, i)
                except ValueError:
                    i += 1
                    continue
                found = _calls_from_obj(obj, names)
                if found:
                    calls.extend(found)
                    spans.append((i, end))
                    i = end
                    continue
            i += 1
    rest, last = [], 0
    for start, end in sorted(spans):
        rest.append(text[last:start])
        last = end
    rest.append(text[last:])
    # "{{...}}" (seen from Qwen) leaves its outer braces behind
    pieces = (p.strip(" \t\n{}[],;") for p in rest) if calls else (p.strip() for p in rest)
    return calls, " ".join(p for p in pieces if p)


def _calls_from_json_text(body: str, names: set) -> List[ToolCall]:
    try:
        obj = json.loads(body)
    except ValueError:
        return []
    return _calls_from_obj(obj, names)


_TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def _calls_from_obj(obj: Any, names: set) -> List[ToolCall]:
    items = obj if isinstance(obj, list) else [obj]
    out = []
    for item in items:
        if not isinstance(item, dict):
            return []
        if isinstance(item.get("function"), dict):  # {"type": "function", "function": {...}}
            item = item["function"]
        name = item.get("name")
        if not isinstance(name, str):
            return []
        # A call of a tool that does not exist is still a call (and never spoken): the dialog answers it
        # with a failed result.  Only the full shape counts then, so {"name": "Ann"} stays text.
        if name not in names and not (_TOOL_NAME.fullmatch(name) and
                                      isinstance(item.get("arguments", item.get("parameters")), (dict, str))):
            return []
        args = item.get("arguments", item.get("parameters", {}))
        if isinstance(args, str):
            out.append(_decode_call(_new_id(), name, args))
        elif isinstance(args, dict):
            out.append(ToolCall(_new_id(), name, args, raw_arguments=json.dumps(args)))
        else:
            out.append(ToolCall(_new_id(), name, {}, error="arguments must be a JSON object",
                                raw_arguments=json.dumps(args)))
    return [ToolCall(c.id, c.name, c.arguments, c.error, c.raw_arguments, from_text=True) for c in out]
