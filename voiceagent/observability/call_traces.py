"""A call's trace: a ``call`` span, a ``turn`` child per turn, a child per stage of the turn.

Fed by the observers' seam.  The call span starts at the call's first state (parented on the trace
context of the request or job that placed it, ``CallInfo.trace_parent``) and ends at ``call_ended``.
A turn's spans are made when the turn is reported, after the fact, with explicit times laid out
from the turn's end of turn (``Turn.at``) and its stage timings:

    turn      last word ─────────────────────────────────────────────▶ reported (played out)
    endpoint  last word → end of turn
    stt       end of turn → transcript (what STT added)
    llm       reply start → first sentence (first token as an attribute)
    tool:<n>  each tool, when it ran
    tts       first sentence → its audio
    playback  audio handed over → PLAYBACK_START

Every timing of the turn is also an attribute of the turn span (``voiceagent.<key>``).  No
transcript text and no phone number goes into a span: lengths and counts only.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from ..calls.call_state import CallState
from ..calls.ports import CallInfo
from ..calls.turns import Turn
from .tracing import call_spans, context_of, ns, tracer

FAILED_OUTCOMES = ("failed",)


def _ms(turn: Turn, key: str) -> Optional[float]:
    v = turn.timings.get(key)
    return float(v) / 1000.0 if v is not None and v >= 0 else None


def _child(parent: Span, name: str, start: float, end: float, attributes: Dict[str, Any]) -> None:
    ctx = trace.set_span_in_context(parent)
    span = tracer().start_span(name, context=ctx, start_time=ns(start), attributes=attributes)
    span.end(end_time=ns(max(start, end)))


def turn_spans(call_span: Span, turn: Turn, reported_at: float) -> None:
    """The turn's span and its stage spans under ``call_span`` (see the module docstring)."""
    eot = turn.at
    endpoint = _ms(turn, "endpoint_wait_ms") or 0.0
    last_word = eot - endpoint
    attrs: Dict[str, Any] = {"voiceagent.turn.index": turn.index, "voiceagent.turn.kind": turn.kind,
                             "voiceagent.turn.interrupted": turn.interrupted,
                             "voiceagent.turn.heard_chars": len(turn.heard),
                             "voiceagent.turn.sentences": len(turn.said), "voiceagent.turn.tools": len(turn.tools)}
    for key, value in turn.timings.items():
        if not key.startswith("_"):
            attrs[f"voiceagent.{key}"] = float(value)
    if turn.speculative_hit is not None:
        attrs["voiceagent.turn.speculative_hit"] = turn.speculative_hit
    span = tracer().start_span("turn", context=trace.set_span_in_context(call_span), start_time=ns(last_word),
                               attributes=attrs)
    if endpoint:
        _child(span, "endpoint", last_word, eot, {"voiceagent.endpoint_wait_ms": endpoint * 1000})
    stt_wait = _ms(turn, "stt_wait_ms")
    if stt_wait is not None:
        _child(span, "stt", eot, eot + stt_wait, {"voiceagent.stt_ms": turn.timings.get("stt_ms", 0.0),
                                                  "voiceagent.speculative_hit": bool(turn.speculative_hit)})
    reply = eot + (stt_wait or 0.0)
    first_sentence = _ms(turn, "llm_first_sentence_ms")
    if first_sentence is not None:
        llm_attrs = {"voiceagent.llm_first_sentence_ms": first_sentence * 1000}
        if "llm_ttft_ms" in turn.timings:
            llm_attrs["voiceagent.llm_ttft_ms"] = float(turn.timings["llm_ttft_ms"])
        _child(span, "llm", reply, reply + first_sentence, llm_attrs)
        tts = _ms(turn, "tts_first_ms")
        if tts is not None:
            _child(span, "tts", reply + first_sentence, reply + first_sentence + tts,
                   {"voiceagent.tts_first_ms": tts * 1000})
    for tool in turn.tools:
        end = tool.started_at + (tool.seconds or 0.0)
        _child(span, f"tool:{tool.name}", tool.started_at, end,
               {"voiceagent.tool.name": tool.name, "voiceagent.tool.ok": bool(tool.ok)})
    v2v = _ms(turn, "voice_to_voice_ms")
    playback = _ms(turn, "playback_start_ms")
    if v2v is not None and playback is not None:
        _child(span, "playback", last_word + v2v, last_word + v2v + playback,
               {"voiceagent.playback_start_ms": playback * 1000})
    span.end(end_time=ns(max(reported_at, last_word)))


class CallTracer:
    """A CallObserver making each call's trace."""

    def __init__(self) -> None:
        self.spans: Dict[str, Span] = {}
        self.barge_ins: Dict[str, int] = {}

    def call_state(self, call: CallInfo, state: CallState, at: float) -> None:
        span = self.spans.get(call.id)
        if span is None:
            attrs = {"voiceagent.call.id": call.id, "voiceagent.call.direction": call.direction.value,
                     "voiceagent.node": call.node, "voiceagent.worker": call.worker}
            if call.profile:
                attrs["voiceagent.profile"] = call.profile
            span = tracer().start_span("call", context=context_of(call.trace_parent), kind=SpanKind.SERVER,
                                       start_time=ns(at), attributes=attrs)
            self.spans[call.id] = span
            if span.get_span_context().is_valid:
                call_spans[call.id] = span.get_span_context()
        span.add_event(f"state {state.value}", timestamp=ns(at))

    def call_turn(self, call: CallInfo, turn: Turn) -> None:
        span = self.spans.get(call.id)
        if span is not None and span.is_recording():
            turn_spans(span, turn, time.time())

    def call_dtmf(self, call: CallInfo, digit: str, at: float) -> None:
        span = self.spans.get(call.id)
        if span is not None:
            span.add_event("dtmf", timestamp=ns(at))  # not the digit: it may be a PIN

    def call_barge_in(self, call: CallInfo, at: float) -> None:
        span = self.spans.get(call.id)
        if span is not None:
            self.barge_ins[call.id] = self.barge_ins.get(call.id, 0) + 1
            span.add_event("barge-in", timestamp=ns(at))

    def call_ended(self, call: CallInfo, *, cause: str, outcome: str, ended_by: str, at: float,
                   refused: str = "") -> None:
        span = self.spans.pop(call.id, None)
        call_spans.pop(call.id, None)
        barge_ins = self.barge_ins.pop(call.id, 0)
        if span is None:
            return
        span.set_attributes({"voiceagent.call.outcome": outcome, "voiceagent.call.cause": cause,
                             "voiceagent.call.ended_by": ended_by, "voiceagent.call.barge_ins": barge_ins})
        if refused:
            span.set_attribute("voiceagent.call.refused", refused)
        if outcome in FAILED_OUTCOMES:
            span.set_status(Status(StatusCode.ERROR, cause or outcome))
        span.end(end_time=ns(at))
