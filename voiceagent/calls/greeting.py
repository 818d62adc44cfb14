"""The built-in dialog: a greeting WAV, then the session hangs up (the plumbing check)."""
from __future__ import annotations

import os
from typing import Optional

import gevent

from .call_state import TurnState
from .playback import Playback
from .ports import CallPort
from .turns import Turn


class GreetingDialog:
    """The built-in dialog: play a greeting, then let the session hang up."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pb: Optional[Playback] = None

    @property
    def turn_state(self) -> TurnState:
        return TurnState.SPEAKING if self._pb is not None and not self._pb.done else TurnState.LISTENING

    def run(self, call: CallPort) -> None:
        import wave

        with wave.open(self.path, "rb") as w:
            pcm, rate = w.readframes(w.getnframes()), w.getframerate()
        pb = self._pb = call.play(pcm, rate, text="greeting")
        gevent.wait([pb.finished, call.ended], count=1, timeout=pb.duration + 30)
        heard = ["greeting"] if pb.status == "done" else []
        call.report_turn(Turn(1, said=["greeting"], heard_by_caller=heard, kind="greeting",
                              interrupted=not heard))


def default_greeting_path() -> str:
    return os.path.join(os.path.dirname(__file__), "data", "greeting.wav")
