"""One log line per turn (its whole stage breakdown) and one per call at its end, from the observers' seam.

The turn line is what an operator reads to know why a caller waited: endpoint wait, STT, LLM first
token and first sentence, TTS first audio, voice-to-voice and FreeSWITCH's PLAYBACK_START delay, in
the message (for the text format) and as fields (``turn``, ``*_ms``; for the JSON format).  The call
line says how it went: outcome, duration, turns, barge-ins.  Both carry the call id.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List

from ..calls.call_state import CallState
from ..calls.ports import CallInfo
from ..calls.turns import Turn
from .call_telemetry import Tallies

log = logging.getLogger("voiceagent.calls.telemetry")

#: (Turn.timings key, words in the message), in the order the stages happen
STAGES = (
    ("endpoint_wait_ms", "endpoint"),
    ("stt_wait_ms", "stt"),
    ("llm_ttft_ms", "llm first token"),
    ("llm_first_sentence_ms", "first sentence"),
    ("tts_first_ms", "tts first audio"),
    ("voice_to_voice_ms", "voice-to-voice"),
    ("playback_start_ms", "playback start"),
)


def turn_fields(turn: Turn) -> Dict[str, Any]:
    """The turn line's fields: index, kind, every timing (ms, rounded), tools, what happened."""
    out: Dict[str, Any] = {"turn": turn.index, "kind": turn.kind}
    for key, value in sorted(turn.timings.items()):
        if not key.startswith("_"):
            out[key] = round(float(value), 1)
    if turn.tools:
        out["tools"] = [t.name for t in turn.tools]
    out["interrupted"] = turn.interrupted
    if turn.speculative_hit is not None:
        out["speculative_hit"] = turn.speculative_hit
    if turn.preemptive is not None:
        out["preemptive"] = turn.preemptive
    return out


def turn_message(turn: Turn) -> str:
    parts: List[str] = [f"{words} {turn.timings[key]:.0f} ms" for key, words in STAGES if key in turn.timings]
    what = ", ".join(parts) or "no timings"
    cut = " (interrupted)" if turn.interrupted else ""
    return f"turn {turn.index} ({turn.kind}): {what}{cut}"


class CallLogs:
    """A CallObserver writing the turn and call-end lines."""

    def __init__(self) -> None:
        self.tallies = Tallies()

    def call_state(self, call: CallInfo, state: CallState, at: float) -> None:
        self.tallies.state(call.id, state, at)

    def call_turn(self, call: CallInfo, turn: Turn) -> None:
        tally = self.tallies.get(call.id)
        if tally is not None:
            tally.turns += 1
        log.info("%s", turn_message(turn), extra={"call_id": call.id, "fields": turn_fields(turn)})

    def call_dtmf(self, call: CallInfo, digit: str, at: float) -> None:
        return None  # a digit may be a PIN: not logged here

    def call_barge_in(self, call: CallInfo, at: float) -> None:
        tally = self.tallies.get(call.id)
        if tally is not None:
            tally.barge_ins += 1

    def call_ended(self, call: CallInfo, *, cause: str, outcome: str, ended_by: str, at: float,
                   refused: str = "") -> None:
        tally = self.tallies.end(call.id)
        answered = tally.answered_at if tally is not None else None
        duration = round(at - answered, 3) if answered is not None else 0.0
        turns = tally.turns if tally is not None else 0
        barge_ins = tally.barge_ins if tally is not None else 0
        fields = {"direction": call.direction.value, "outcome": outcome, "cause": cause, "ended_by": ended_by,
                  "duration_seconds": duration, "turns": turns, "barge_ins": barge_ins}
        if refused:
            fields["refused"] = refused
        log.info("call ended: %s, %.1f s, %d turns, %d barge-ins%s", outcome or "?", duration, turns, barge_ins,
                 f" (refused: {refused})" if refused else "", extra={"call_id": call.id, "fields": fields})
