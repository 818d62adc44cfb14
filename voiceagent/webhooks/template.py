"""A small template syntax over a JSON payload: ``{{ alert.labels.severity }}``.

Why not Jinja or ``str.format``: the payload comes from outside, and both reach Python objects
(attributes, methods, ``__class__``).  Here a placeholder is only a dotted path of dict keys and
list indexes into plain JSON, with one optional fallback: ``{{ path | default("text") }}``.
Nothing is evaluated.  A path the payload lacks is an error naming it (the webhook gets a 422),
unless it has a default.  Each value and the whole text are capped, so a huge payload cannot make
a message longer than a call request allows.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, List, Tuple, Union

VALUE_MAX = 300        # characters one placeholder may insert
TEXT_MAX = 2000        # the longest rendered text (CallRequest.message's limit)

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)
_BODY = re.compile(r"""^\s*([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)\s*"""
                   r"""(?:\|\s*default\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\)\s*)?$""", re.S)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class TemplateError(ValueError):
    """The template itself is malformed (found when the configuration loads)."""


class MissingField(ValueError):
    """A path the template reads is not in the payload (or is not a value)."""

    def __init__(self, path: str, message: str = "is not in the payload") -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class _Hole:
    path: Tuple[str, ...]
    default: Union[str, None]


class Template:
    """A parsed template; :meth:`render` fills it from a payload."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts: List[Union[str, _Hole]] = []
        pos = 0
        for m in _PLACEHOLDER.finditer(text):
            self.parts.append(text[pos:m.start()])
            body = _BODY.match(m.group(1))
            if body is None:
                raise TemplateError(f"{m.group(0)!r}: expected {{{{ a.b.0.c }}}} or {{{{ a.b | default(\"text\") }}}}")
            default = body.group(2) if body.group(2) is not None else body.group(3)
            if default is not None:
                default = re.sub(r"\\(.)", r"\1", default)
            self.parts.append(_Hole(tuple(body.group(1).split(".")), default))
            pos = m.end()
        rest = text[pos:]
        if "{{" in rest or "}}" in rest:
            raise TemplateError(f"unbalanced '{{{{' or '}}}}' in {text!r}")
        self.parts.append(rest)

    @property
    def paths(self) -> List[str]:
        return [".".join(p.path) for p in self.parts if isinstance(p, _Hole)]

    def render(self, payload: Any, limit: int = TEXT_MAX) -> str:
        """The text with every placeholder filled; raises MissingField naming the first missing path."""
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            try:
                out.append(_show(lookup(payload, part.path), ".".join(part.path)))
            except MissingField:
                if part.default is None:
                    raise
                out.append(part.default)
        return _cap(" ".join("".join(out).split()), limit)  # spoken: line breaks and runs of spaces are one space


def lookup(payload: Any, path: Tuple[str, ...]) -> Any:
    """The value at ``path``: dict keys and list indexes only (never an attribute)."""
    node = payload
    for i, step in enumerate(path):
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            gap = f" (it has no {'.'.join(path[:i + 1])})" if i + 1 < len(path) else ""
            raise MissingField(".".join(path), "is not in the payload" + gap)
    return node


def _show(value: Any, path: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (int, str)):
        return _cap(_CONTROL.sub(" ", str(value)), VALUE_MAX)
    if isinstance(value, list) and all(isinstance(v, (str, int, float, bool)) or v is None for v in value):
        return _cap(", ".join(_show(v, path) for v in value if v is not None), VALUE_MAX)
    raise MissingField(path, "is an object or a list of objects, not a value (name a field inside it)")


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"
