"""The dialog against a fake call (calls.ports.CallPort, no session, no emulator), and the observer seam
on a real inbound call through the emulator."""
import time

import gevent
import gevent.queue

from voiceagent.calls.call_state import CallState as S, Direction, TurnState
from voiceagent.calls.flags import Flag
from voiceagent.calls.playback import Playback, PlaybackStatus
from voiceagent.calls.ports import CallEvent, CallPort
from voiceagent.calls.turns import ToolCall
from voiceagent.testing import llm_server as L

from ..observer_recorder import Recorder
from .conftest import place_call, wait_for


class FakeCall:
    """A call that 'plays' every reply at once: enough for a VoiceDialog."""

    def __init__(self):
        self.id = "0e6f7f0c-aaaa-4222-8333-444455556666"
        self.direction = Direction.INBOUND
        self.caller, self.callee, self.profile, self.request = "+1555", "100", None, None
        self.sample_rate = 16000
        self.events = gevent.queue.Queue()
        self.ended = Flag()
        self.barge_ins = []
        self.played, self.turns, self.hung_up = [], [], []
        self.greenlets = []

    @property
    def speaking(self):
        return False

    @property
    def audio_clock(self):
        return 0.0

    def set_audio_sink(self, sink):
        pass

    def play(self, pcm, rate, text=""):
        pb = Playback(text=text, duration=len(pcm) / 2 / rate)
        pb.handed_at = pb.started_at = time.monotonic()
        pb._finish(PlaybackStatus.DONE)
        self.played.append(text)
        return pb

    def play_file(self, path, text=""):
        return self.play(b"", 16000, text)

    def stop_playback(self):
        return False

    def hangup(self, cause="NORMAL_CLEARING"):
        self.hung_up.append(cause)
        self.ended.set()

    def transfer(self, destination, dialplan="XML", context="default"):
        pass

    def spawn(self, fn, *args):
        g = gevent.spawn(fn, *args)
        self.greenlets.append(g)
        return g

    def report_turn(self, turn):
        self.turns.append(turn)

    def report_barge_in(self, at):
        pass


def test_voice_dialog_runs_against_a_fake_call(voice, llm):
    llm.push(L.tool_call("get_datetime", {}), L.text("It is noon."))
    call = FakeCall()
    assert isinstance(call, CallPort)
    dialog = voice.dialog(call)
    assert dialog.turn_state is TurnState.LISTENING
    g = gevent.spawn(dialog.run, call)
    assert wait_for(lambda: call.played, 10), "no greeting"
    call.events.put(CallEvent("dtmf", "1"))
    assert wait_for(lambda: call.turns and call.turns[-1].kind == "dtmf", 20), call.turns
    turn = call.turns[-1]
    assert turn.said == ["It is noon."] and turn.heard_by_caller == ["It is noon."]
    assert turn.tools and isinstance(turn.tools[0], ToolCall) and turn.tools[0].name == "get_datetime"
    assert turn.tools[0].ok and turn.tools[0]["name"] == "get_datetime"
    assert dialog.current_reply is not None and dialog.current_reply.status.value == "done"
    call.ended.set()
    g.join(5)
    assert g.dead
    for x in call.greenlets:
        x.kill()


def test_observers_hear_an_inbound_call_in_order(make_stack, voice, llm):
    llm.push(L.text("You chose option one."))
    stack = make_stack(voice, speed=3.0)
    rec = Recorder()
    stack.worker.observers.append(rec)
    ch, sess = place_call(make_stack, voice, stack=stack)
    ch.press("1")
    assert wait_for(lambda: ("turn", "dtmf") in rec.seen, 20), rec.seen
    ch.hangup()
    assert sess.closed.wait(10)
    states = [s for k, s in rec.seen if k == "state"]
    assert states == [S.OFFERED, S.CONFIRMED, S.ANSWERING, S.ACTIVE, S.ENDING, S.ENDED], states
    kinds = [(k, v) if k == "turn" else k for k, v in rec.seen]
    assert kinds.index(("turn", "greeting")) < kinds.index("dtmf") < kinds.index(("turn", "dtmf")) \
        < kinds.index("ended") == len(kinds) - 1, kinds
    assert rec.seen[-1] == ("ended", ("NORMAL_CLEARING", "answered", "caller"))
    assert rec.calls[-1].caller == "+15551230001"
