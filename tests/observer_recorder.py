"""A CallObserver for tests: every notification, in order, as (kind, value); ``calls`` keeps the
CallInfo each notification came with."""
from voiceagent.calls.ports import CallInfo


class Recorder:
    def __init__(self):
        self.seen = []
        self.calls = []

    def _note(self, call, kind, value):
        assert isinstance(call, CallInfo)
        self.calls.append(call)
        self.seen.append((kind, value))

    def call_state(self, call, state, at):
        self._note(call, "state", state)

    def call_turn(self, call, turn):
        self._note(call, "turn", turn.kind)

    def call_dtmf(self, call, digit, at):
        self._note(call, "dtmf", digit)

    def call_barge_in(self, call, at):
        self._note(call, "barge_in", None)

    def call_ended(self, call, *, cause, outcome, ended_by, at, refused=""):
        self._note(call, "ended", (cause, outcome, ended_by))
