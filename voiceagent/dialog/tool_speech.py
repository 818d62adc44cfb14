"""A tool's result as words to say on the phone: the API's ``POST /tools/{name}/execute`` with a
``call_id`` and the voice worker's tool-at-answer (``CallRequest.tool``) say it the same way.

A string is said as is; a dict with a ``speak`` (a ToolReply's words), ``text``, ``summary`` or ``speech``
key says that; anything
else becomes a short readable rendering ("date: March 3, 2025. time: 9:30 AM."), never JSON
punctuation, and never longer than :data:`MAX_CHARS` (one inbox ``say`` command holds 1000).
"""
from __future__ import annotations

from typing import Any, List

#: Said instead of the result when the tool failed or timed out (the call goes on).
APOLOGY = "Sorry, I could not get that information right now."

#: Keys of a dict result that already hold the sentence to say, in order of preference.
SPOKEN_KEYS = ("speak", "text", "summary", "speech")  # "speak": a ToolReply's verbatim words

MAX_CHARS = 600
_MAX_ITEMS = 8
_SKIPPED = {"iso", "ok"}  # machine-readable duplicates of what the other keys say


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    return str(value).strip()


def _render(value: Any, depth: int = 0) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        if depth == 0:
            for key in SPOKEN_KEYS:
                if isinstance(value.get(key), str) and value[key].strip():
                    return str(value[key]).strip()
        parts: List[str] = []
        for k, v in list(value.items())[:_MAX_ITEMS]:
            if str(k) in _SKIPPED:
                continue
            text = _render(v, depth + 1) if depth < 2 else _scalar(v)
            if text:
                parts.append(f"{str(k).replace('_', ' ')}: {text}")
        return ". ".join(parts) if depth == 0 else ", ".join(parts)
    if isinstance(value, (list, tuple)):
        items = [_render(v, depth + 1) if depth < 2 else _scalar(v) for v in list(value)[:_MAX_ITEMS]]
        return ", ".join(i for i in items if i)
    return _scalar(value)


def _direct(value: Any) -> bool:
    """The result is already a sentence (a string, or a dict's text/summary/speech)."""
    return isinstance(value, str) or (isinstance(value, dict) and any(
        isinstance(value.get(k), str) and value[k].strip() for k in SPOKEN_KEYS))


def spoken(value: Any) -> str:
    """What to say for a tool's result (may be empty: nothing worth saying)."""
    text = " ".join("".join(ch for ch in _render(value) if ch.isprintable() or ch.isspace()).split())
    if len(text) > MAX_CHARS:
        cut = text[:MAX_CHARS].rsplit(" ", 1)[0]
        text = cut.rstrip(",.;: ") + "."
    elif text and not _direct(value) and text[-1] not in ".!?":
        text += "."
    return text

