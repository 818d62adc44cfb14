"""The XML dialplan subset the emulator interprets, and FreeSWITCH variable expansion.

Supported: ``<context name>``/``<include>`` files (a file under ``dialplan/<ctx>/`` belongs to
context ``<ctx>``), ``<extension name continue>``, ``<condition field expression break>`` with
``$1`` captures, ``<action>``/``<anti-action>``, ``$${preprocessor}`` variables, and at run
time ``${var}`` / ``${api(args)}`` expansion.
"""
from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

log = logging.getLogger(__name__)

_PRE = re.compile(r"\$\$\{([A-Za-z0-9_]+)\}")


@dataclass
class Condition:
    field: str
    expression: str
    break_: str = "on-false"
    actions: List[Tuple[str, str]] = field(default_factory=list)
    anti_actions: List[Tuple[str, str]] = field(default_factory=list)


@dataclass
class Extension:
    name: str
    conditions: List[Condition]
    continue_: bool = False


def read_preprocessor_vars(path: Path) -> Dict[str, str]:
    """``<X-PRE-PROCESS cmd="set" data="name=value"/>`` lines of a vars file."""
    out: Dict[str, str] = {}
    if not path.is_file():
        return out
    for m in re.finditer(r'<X-PRE-PROCESS\s+cmd="set"\s+data="([^"=]+)=([^"]*)"\s*/>', path.read_text()):
        out[m.group(1)] = m.group(2)
    return out


class Dialplan:
    def __init__(self, directory: Path, preprocessor: Dict[str, str]) -> None:
        self.directory = Path(directory)
        self.pre = dict(preprocessor)
        self.contexts: Dict[str, List[Extension]] = {}
        self.load()

    def _preprocess(self, text: str) -> str:
        return _PRE.sub(lambda m: self.pre.get(m.group(1), ""), text)

    def load(self) -> None:
        self.contexts = {}
        if not self.directory.is_dir():
            raise FileNotFoundError(f"dialplan directory {self.directory} not found")
        for path in sorted(self.directory.rglob("*.xml")):
            try:
                root = ET.fromstring(self._preprocess(path.read_text()))
            except ET.ParseError as exc:
                log.error("dialplan %s: XML error %s (skipped)", path, exc)
                continue
            rel = path.relative_to(self.directory)
            default_ctx = rel.parts[0] if len(rel.parts) > 1 else path.stem
            ctx_nodes = [root] if root.tag == "context" else root.findall("context")
            if ctx_nodes:
                for ctx in ctx_nodes:
                    self._add(ctx.get("name", default_ctx), ctx)
            else:
                self._add(default_ctx, root)

    def _add(self, ctx: str, node: ET.Element) -> None:
        exts = self.contexts.setdefault(ctx, [])
        for ext in node.findall("extension"):
            conds = []
            for c in ext.findall("condition"):
                cond = Condition(c.get("field", ""), c.get("expression", ""), c.get("break", "on-false"))
                for a in c:
                    item = (a.get("application", ""), a.get("data", ""))
                    if a.tag == "action":
                        cond.actions.append(item)
                    elif a.tag == "anti-action":
                        cond.anti_actions.append(item)
                conds.append(cond)
            exts.append(Extension(ext.get("name", ""), conds, ext.get("continue", "false") == "true"))

    def route(self, context: str, fields: Callable[[str], str]) -> List[Tuple[str, str]]:
        """The actions to run for a call; ``fields(name)`` resolves condition fields."""
        actions: List[Tuple[str, str]] = []
        for ext in self.contexts.get(context, []):
            matched_all = True
            ext_actions: List[Tuple[str, str]] = []
            for cond in ext.conditions:
                if not cond.field and not cond.expression:
                    ext_actions += cond.actions
                    continue
                value = fields(cond.field)
                m = re.search(cond.expression, value or "")
                if m:
                    ext_actions += [(app, _captures(data, m)) for app, data in cond.actions]
                else:
                    ext_actions += cond.anti_actions
                    if cond.break_ in ("on-false", "always"):
                        matched_all = False
                        break
            if matched_all and ext_actions:
                actions += ext_actions
                if not ext.continue_:
                    break
        return actions


def _captures(data: str, m: re.Match) -> str:
    return re.sub(r"\$(\d)", lambda g: (m.group(int(g.group(1))) or "") if int(g.group(1)) <= (m.re.groups or 0) else "", data)


def expand(text: str, lookup: Callable[[str], Optional[str]], api: Callable[[str, str], str]) -> str:
    """FreeSWITCH ``switch_channel_expand_variables``: ``${var}`` and ``${api(args)}``, nested."""
    out = []
    i = 0
    while i < len(text):
        j = text.find("${", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        depth, k = 0, j + 1
        while k < len(text):
            if text[k] == "{":
                depth += 1
            elif text[k] == "}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        if k >= len(text):  # unbalanced: leave as is
            out.append(text[j:])
            break
        inner = expand(text[j + 2:k], lookup, api)
        m = re.match(r"^([A-Za-z0-9_]+)\((.*)\)$", inner, re.S)
        if m:
            out.append(api(m.group(1), m.group(2)))
        else:
            out.append(lookup(inner) or "")
        i = k + 1
    return "".join(out)
