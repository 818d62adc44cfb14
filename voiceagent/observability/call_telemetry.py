"""The worker's telemetry observers (metrics, the call's trace, its log lines) and what they share:
a small tally per live call, dropped at ``call_ended`` (which always comes last)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional

from ..calls.call_state import CallState

if TYPE_CHECKING:  # pragma: no cover
    from ..calls.ports import CallObserver

#: the states that mean the far end picked up (outbound ANSWERED, inbound ACTIVE after our answer)
ANSWER_STATES = (CallState.ANSWERED, CallState.ACTIVE)


@dataclass
class CallTally:
    first_state: CallState
    started_at: float
    answered_at: Optional[float] = None
    turns: int = 0
    barge_ins: int = 0

    def saw(self, state: CallState, at: float) -> None:
        if state in ANSWER_STATES and self.answered_at is None:
            self.answered_at = at


class Tallies:
    """Per live call: a :class:`CallTally` made at its first state, handed back (and forgotten) at its end."""

    def __init__(self) -> None:
        self.live: Dict[str, CallTally] = {}

    def state(self, call_id: str, state: CallState, at: float) -> "tuple[CallTally, bool]":
        """(tally, new): ``new`` the first time the call is heard of."""
        t = self.live.get(call_id)
        new = t is None
        if t is None:
            t = self.live[call_id] = CallTally(state, at)
        t.saw(state, at)
        return t, new

    def get(self, call_id: str) -> Optional[CallTally]:
        return self.live.get(call_id)

    def end(self, call_id: str) -> Optional[CallTally]:
        return self.live.pop(call_id, None)


def call_telemetry() -> "List[CallObserver]":
    """The observers a voice worker adds after its records reporter."""
    from .call_logs import CallLogs
    from .call_metrics import CallMetrics
    from .call_traces import CallTracer

    return [CallMetrics(), CallLogs(), CallTracer()]  # logs before the tracer ends the span their ids name
