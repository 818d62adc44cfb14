"""Fan-out to a worker's call observers: each one is called in turn, and one that raises is logged,
never allowed to break the call (or the observers after it)."""
from __future__ import annotations

import logging
from typing import Callable, List

from .call_state import CallState
from .ports import CallInfo, CallObserver
from .turns import Turn

log = logging.getLogger(__name__)


class Observers:
    """A :class:`CallObserver` that forwards to every observer in ``targets`` (a live list)."""

    def __init__(self, targets: List[CallObserver]) -> None:
        self.targets = targets

    def _each(self, what: str, call: CallInfo, fn: Callable[[CallObserver], None]) -> None:
        for obs in list(self.targets):
            try:
                fn(obs)
            except Exception:
                log.exception("call observer %r failed on %s", obs, what, extra={"call_id": call.id})

    def call_state(self, call: CallInfo, state: CallState, at: float) -> None:
        self._each("call_state", call, lambda o: o.call_state(call, state, at))

    def call_turn(self, call: CallInfo, turn: Turn) -> None:
        self._each("call_turn", call, lambda o: o.call_turn(call, turn))

    def call_dtmf(self, call: CallInfo, digit: str, at: float) -> None:
        self._each("call_dtmf", call, lambda o: o.call_dtmf(call, digit, at))

    def call_barge_in(self, call: CallInfo, at: float) -> None:
        self._each("call_barge_in", call, lambda o: o.call_barge_in(call, at))

    def call_ended(self, call: CallInfo, *, cause: str, outcome: str, ended_by: str, at: float,
                   refused: str = "") -> None:
        self._each("call_ended", call,
                   lambda o: o.call_ended(call, cause=cause, outcome=outcome, ended_by=ended_by, at=at,
                                        refused=refused))
