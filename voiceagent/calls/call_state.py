"""The call state machine: explicit states, the transitions allowed between them, and their history.

Outbound: REQUESTED → DIALING → RINGING → ANSWERED → ACTIVE → ENDING → ENDED (or → FAILED → ENDED
when the originate fails).  Inbound: OFFERED → CONFIRMED → ANSWERING → ACTIVE → ENDING → ENDED (or
→ REFUSED → ENDED).  A transition the table does not allow is logged and ignored: a late or
duplicated FreeSWITCH event must never crash a call nor move it backwards.
"""
from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, List, Optional

log = logging.getLogger(__name__)


class CallState(str, enum.Enum):
    REQUESTED = "requested"   # outbound: we are about to send the originate
    DIALING = "dialing"       # originate sent
    RINGING = "ringing"       # FreeSWITCH reported progress (a 180/183)
    ANSWERED = "answered"     # the callee picked up; the fork is being started
    OFFERED = "pending"       # inbound: one side seen (fork or ESL), waiting for the other
    CONFIRMED = "confirmed"   # FreeSWITCH has the channel and the worker took the call
    ANSWERING = "answering"
    ACTIVE = "active"
    ENDING = "ending"
    REFUSED = "refused"       # not taken (busy, draining, unconfirmed)
    FAILED = "failed"         # the originate failed (busy, no answer, ...)
    ENDED = "ended"
    PENDING = "pending"       # the old name of OFFERED (an alias: the same member)

    @property
    def over(self) -> bool:
        """The call is ending or ended: no more talking."""
        return self in _OVER

    @property
    def record_value(self) -> str:
        """The state as the Redis call record has always spelled it (pending/answering/active/ending/ended)."""
        return _RECORD.get(self, self.value)


_OVER = frozenset({CallState.ENDING, CallState.REFUSED, CallState.FAILED, CallState.ENDED})
_RECORD = {CallState.REQUESTED: "pending", CallState.DIALING: "pending", CallState.RINGING: "pending",
           CallState.ANSWERED: "pending", CallState.CONFIRMED: "pending", CallState.REFUSED: "ending",
           CallState.FAILED: "ending"}

S = CallState
ALLOWED: Dict[CallState, FrozenSet[CallState]] = {
    S.REQUESTED: frozenset({S.DIALING, S.FAILED}),
    S.DIALING: frozenset({S.RINGING, S.ANSWERED, S.FAILED, S.ENDING}),
    S.RINGING: frozenset({S.ANSWERED, S.FAILED, S.ENDING}),
    S.ANSWERED: frozenset({S.ACTIVE, S.ENDING}),
    S.OFFERED: frozenset({S.CONFIRMED, S.REFUSED, S.ENDING}),
    S.CONFIRMED: frozenset({S.ANSWERING, S.ACTIVE, S.REFUSED, S.ENDING}),
    S.ANSWERING: frozenset({S.ACTIVE, S.ENDING}),
    S.ACTIVE: frozenset({S.ENDING}),
    S.ENDING: frozenset({S.ENDED}),
    S.REFUSED: frozenset({S.ENDED}),
    S.FAILED: frozenset({S.ENDED}),
    S.ENDED: frozenset(),
}


class Direction(str, enum.Enum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class TurnState(str, enum.Enum):
    """Where the dialog is in the conversation's turn-taking."""

    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"


@dataclass(frozen=True)
class Transition:
    state: CallState
    at: float  # wall clock (time.time())


class CallStates:
    """One call's current state and its timestamped history; ``on_change(state, at)`` sees every transition."""

    def __init__(self, initial: CallState, on_change: Optional[Callable[[CallState, float], None]] = None) -> None:
        self.history: List[Transition] = [Transition(initial, time.time())]
        self._on_change = on_change

    @property
    def current(self) -> CallState:
        return self.history[-1].state

    def can(self, to: CallState) -> bool:
        return to in ALLOWED[self.current]

    def to(self, state: CallState) -> bool:
        """Move to ``state``; False (logged, nothing changed) if the table does not allow it."""
        cur = self.current
        if state is cur:
            return False
        if state not in ALLOWED[cur]:
            log.warning("illegal call state transition %s -> %s ignored", cur.name, state.name)
            return False
        t = Transition(state, time.time())
        self.history.append(t)
        if self._on_change is not None:
            self._on_change(state, t.at)
        return True

    def at(self, state: CallState) -> Optional[float]:
        """When the call entered ``state`` (None if it never did)."""
        return next((t.at for t in self.history if t.state is state), None)
