"""A call record shaped for the call page: who said what, what the caller heard of it, tools, and
each turn's stages as bars of a latency waterfall.

The record keeps what the agent handed to FreeSWITCH (``agent_text``) and what the caller heard
(``heard``: the sentences played, a cut one ending in " —"); the page shows each sentence as
heard, cut off or never heard.  Stage timings are milliseconds from the caller's last speech
(voice_dialog.py): endpoint wait, then STT after the end of turn, then the LLM (first token,
first sentence) and the first sentence's TTS, then FreeSWITCH starting the playback.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ..records.models import CallRecord, ToolCallRecord, TurnRecord

CUT = " —"               # how the records mark a sentence cut off mid-way (calls/voice_dialog.py)
WATERFALL_WIDTH = 600    # px of the longest turn's bar area
RESULT_CHARS = 2000      # a tool result longer than this is shortened on the page


@dataclass
class Sentence:
    text: str
    status: str          # heard | cut | unheard


@dataclass
class Bar:
    stage: str
    start_ms: float
    ms: float
    x: float = 0.0
    width: float = 0.0

    @property
    def css(self) -> str:
        return "stage-" + self.stage.lower().replace(" ", "-")


@dataclass
class TurnView:
    index: int
    kind: str
    offset: str                      # "+12.3 s" from the call's creation
    caller: str
    caller_raw: str
    sentences: List[Sentence]
    interrupted: bool
    ack: str
    tools: List[Dict[str, Any]]
    bars: List[Bar] = field(default_factory=list)
    timings: Dict[str, float] = field(default_factory=dict)


def sentences(turn: TurnRecord) -> List[Sentence]:
    """Each sentence the agent said (the acknowledgement first, if any), as the caller heard it.

    ``heard`` is in playing order and holds only what was played, so it is matched against the
    sentences in order: one it does not reach was never heard."""
    said = ([turn.ack] if turn.ack and turn.ack not in turn.agent_text else []) + list(turn.agent_text)
    heard = list(turn.heard)
    out: List[Sentence] = []
    j = 0
    for text in said:
        if j < len(heard) and heard[j].removesuffix(CUT) == text:
            out.append(Sentence(text, "cut" if heard[j].endswith(CUT) else "heard"))
            j += 1
        else:
            out.append(Sentence(text, "unheard"))
    for h in heard[j:]:  # heard but not among the sentences (nothing today; shown rather than lost)
        out.append(Sentence(h.removesuffix(CUT), "cut" if h.endswith(CUT) else "heard"))
    return out


def stages(timings: Dict[str, float]) -> List[Bar]:
    """The turn's stages, each placed where it started (ms after the caller's last speech)."""
    t = timings.get
    bars: List[Bar] = []
    endpoint = t("endpoint_wait_ms") or 0.0
    stt = t("stt_wait_ms") or 0.0
    llm_at = endpoint + stt

    def add(stage: str, start: float, ms: Optional[float]) -> None:
        if ms is not None and ms >= 0:
            bars.append(Bar(stage, round(start, 1), round(ms, 1)))

    add("endpoint wait", 0.0, t("endpoint_wait_ms"))
    add("STT", endpoint, t("stt_wait_ms"))
    add("LLM first token", llm_at, t("llm_ttft_ms"))
    add("LLM first sentence", llm_at, t("llm_first_sentence_ms"))
    if t("llm_first_sentence_ms") is not None:
        add("TTS first audio", llm_at + (t("llm_first_sentence_ms") or 0.0), t("tts_first_ms"))
    add("voice to voice", 0.0, t("voice_to_voice_ms"))
    if t("voice_to_voice_ms") is not None:
        add("playback start", t("voice_to_voice_ms") or 0.0, t("playback_start_ms"))
    return bars


def _scale(turns: List[TurnView]) -> None:
    longest = max([b.start_ms + b.ms for tv in turns for b in tv.bars] + [1.0])
    for tv in turns:
        for b in tv.bars:
            b.x = round(b.start_ms / longest * WATERFALL_WIDTH, 1)
            b.width = round(max(b.ms / longest * WATERFALL_WIDTH, 1.0), 1)


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1, default=str)
    return text if len(text) <= RESULT_CHARS else text[:RESULT_CHARS] + " …"


def _tool(t: ToolCallRecord) -> Dict[str, Any]:
    return {"name": t.name, "ok": t.ok, "arguments": _shown(t.arguments), "result": _shown(t.result)}


def turn_views(rec: CallRecord) -> List[TurnView]:
    start = rec.created or (rec.turns[0].at if rec.turns else 0.0)
    views = [TurnView(index=t.index, kind=t.kind, offset=f"+{max(0.0, t.at - start):.1f} s" if t.at else "",
                      caller=t.caller_text, caller_raw=t.caller_raw if t.caller_raw != t.caller_text else "",
                      sentences=sentences(t), interrupted=t.interrupted, ack=t.ack,
                      tools=[_tool(x) for x in t.tools], bars=stages(t.timings), timings=dict(t.timings))
             for t in rec.turns]
    _scale(views)
    return views


def when(ts: Optional[float]) -> str:
    """A wall-clock time as the pages show it (UTC)."""
    if not ts:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))
