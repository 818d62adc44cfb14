"""The worker's call and turn metrics, fed by the call observers' seam (calls/ports.py CallObserver).

A turn's stage timings are the dialog's (``Turn.timings``, ms): each present one is observed once,
in seconds.  Started/ended totals count every call the observers hear of, so started - ended is
what is in flight; the duration histogram only answered calls (answer to hangup).
"""
from __future__ import annotations

from ..calls.call_state import CallState
from ..calls.ports import CallInfo
from ..calls.turns import Turn
from . import metrics as m
from .call_telemetry import Tallies

#: Turn.timings key (ms) -> the histogram it goes to; stt_wait_ms is what STT added after the end of
#: turn (a speculative transcript ready by then adds nothing), stt_ms the transcription itself
TURN_STAGES = (
    ("endpoint_wait_ms", m.TURN_ENDPOINT_WAIT),
    ("stt_wait_ms", m.TURN_STT),
    ("llm_ttft_ms", m.TURN_LLM_FIRST_TOKEN),
    ("tts_first_ms", m.TURN_TTS_FIRST_AUDIO),
    ("voice_to_voice_ms", m.TURN_VOICE_TO_VOICE),
)


class CallMetrics:
    """A CallObserver that moves the Prometheus metrics of :mod:`.metrics`."""

    def __init__(self) -> None:
        self.tallies = Tallies()

    def call_state(self, call: CallInfo, state: CallState, at: float) -> None:
        _, new = self.tallies.state(call.id, state, at)
        if new:
            m.CALLS_STARTED.labels(direction=call.direction.value).inc()

    def call_turn(self, call: CallInfo, turn: Turn) -> None:
        m.TURNS.labels(kind=turn.kind).inc()
        for key, hist in TURN_STAGES:
            value = turn.timings.get(key)
            if value is not None and value >= 0:
                hist.observe(value / 1000.0)

    def call_dtmf(self, call: CallInfo, digit: str, at: float) -> None:
        return None

    def call_barge_in(self, call: CallInfo, at: float) -> None:
        m.BARGE_INS.inc()

    def call_ended(self, call: CallInfo, *, cause: str, outcome: str, ended_by: str, at: float,
                   refused: str = "") -> None:
        tally = self.tallies.end(call.id)
        m.CALLS_ENDED.labels(direction=call.direction.value, outcome=outcome or "unknown").inc()
        if tally is not None and tally.answered_at is not None and not refused:
            m.CALL_DURATION.labels(direction=call.direction.value).observe(max(0.0, at - tally.answered_at))
