"""A CallSession against a small fake worker (calls.ports.SessionHost, no VoiceWorker, no emulator),
driven by typed events: confirmation → answer → a playback → DTMF → hangup, as observers see it."""
import uuid

import gevent
import gevent.event

from voiceagent.calls.call_state import CallState as S
from voiceagent.calls.observers import Observers
from voiceagent.calls.playback import PlaybackStatus
from voiceagent.calls.ports import CallPort, SessionHost
from voiceagent.calls.session import CallSession, Direction
from voiceagent.config import load_settings
from voiceagent.telephony import eslwire, events

from ..observer_recorder import Recorder


def typed(name, call_id, **headers):
    hs = [("Event-Name", name), ("Unique-ID", call_id), ("FreeSWITCH-Switchname", "fs1")]
    hs += [(k.replace("_", "-"), v) for k, v in headers.items()]
    return events.parse(eslwire.Event(hs, b""))


class FakeNode:
    name = "fs1"

    def __init__(self):
        self.sent = []  # (command, args)
        self.fs = self

    def fs_async(self, method, *args, on_error=None, **kwargs):
        self.sent.append((method, args))

    def answer(self, call_id):
        self.sent.append(("answer", (call_id,)))


class FakeWorker:
    """Everything a session needs from its worker (SessionHost), nothing more."""

    def __init__(self, tmp_path, dialog):
        self.settings = load_settings(playback_dir=tmp_path, playback_mode="shared", fork_grace_seconds=2,
                                      audio_idle_seconds=60)
        self.worker_id = "fake-worker"
        self.recorder = Recorder()
        self.notify = Observers([self.recorder])
        self.dialog = dialog
        self.closed = []
        self.updates = []
        self.refusals = []

    def spawn(self, fn, *args, call_id=None, **kwargs):
        return gevent.spawn(fn, *args, **kwargs)

    def fork_url_for(self, call_id):
        return f"ws://127.0.0.1:1/call/{call_id}"

    def fork_metadata(self, sess):
        return {"uuid": sess.id}

    def store_update(self, sess, **fields):
        self.updates.append(fields)

    def log_refusal(self, kind, msg, *args):
        self.refusals.append(kind)

    def metrics_refused(self, reason):
        pass

    def make_dialog(self, sess):
        return self.dialog

    def session_closed(self, sess):
        self.closed.append(sess.id)


class OneBeep:
    """Plays one beep, then waits for a DTMF digit and hangs up."""

    def __init__(self):
        self.pb = None
        self.digit = None

    def run(self, call: CallPort):
        self.pb = call.play(b"\x00\x01" * 1600, 16000, text="beep")
        self.pb.wait(5)
        ev = call.events.get(timeout=5)
        self.digit = ev.value


def _started(tmp_path, dialog):
    w = FakeWorker(tmp_path, dialog)
    node = FakeNode()
    sess = CallSession(w, node, str(uuid.uuid4()), direction=Direction.INBOUND, caller="+1555", callee="100")
    assert isinstance(w, SessionHost) and isinstance(sess, CallPort)
    sess.start()
    return w, node, sess


def test_a_session_runs_against_a_fake_worker_on_typed_events(tmp_path):
    dialog = OneBeep()
    w, node, sess = _started(tmp_path, dialog)
    sess.observe()
    sess._to(S.CONFIRMED)
    sess.admitted = True
    sess.confirmed.set()
    with gevent.Timeout(5):
        while dialog.pb is None or not dialog.pb.file:
            gevent.sleep(0.01)
    assert ("answer", (sess.id,)) in node.sent and sess.state is S.ACTIVE
    path = dialog.pb.file
    assert ("broadcast", (sess.id, path)) in node.sent and dialog.pb.status is PlaybackStatus.HANDED
    sess.on_esl_event(typed("PLAYBACK_START", sess.id, Playback_File_Path=path))
    assert dialog.pb.status is PlaybackStatus.PLAYING and sess.speaking
    sess.on_esl_event(typed("PLAYBACK_STOP", sess.id, Playback_File_Path=path, Playback_Status="done"))
    assert dialog.pb.status is PlaybackStatus.DONE and not sess.speaking
    sess.on_esl_event(typed("DTMF", sess.id, DTMF_Digit="5"))
    with gevent.Timeout(5):
        while not any(m == "kill" for m, _ in node.sent):
            gevent.sleep(0.01)
    assert dialog.digit == "5" and sess.state is S.ENDING and sess.ended_by == "agent"
    sess.on_esl_event(typed("CHANNEL_HANGUP", sess.id, Hangup_Cause="NORMAL_CLEARING",
                            Caller_Channel_Answered_Time="1"))
    assert sess.closed.wait(5) and w.closed == [sess.id]
    assert [s for k, s in w.recorder.seen if k == "state"] == [S.OFFERED, S.CONFIRMED, S.ANSWERING, S.ACTIVE,
                                                               S.ENDING, S.ENDED]
    kinds = [k for k, _ in w.recorder.seen]
    assert kinds.index("dtmf") < kinds.index("ended") == len(kinds) - 1
    assert w.recorder.seen[-1] == ("ended", ("NORMAL_CLEARING", "answered", "agent"))
    assert [h.state for h in sess.states.history][-1] is S.ENDED and not list(tmp_path.iterdir())


def test_barge_in_break_and_a_failed_file(tmp_path):
    w, node, sess = _started(tmp_path, OneBeep())
    a = sess.play_file("/nowhere/a.wav")
    b = sess.play_file("/nowhere/b.wav")
    sess.on_esl_event(typed("PLAYBACK_START", sess.id, Playback_File_Path=a.file))
    sess.on_esl_event(typed("PLAYBACK_STOP", sess.id, Playback_File_Path=a.file, Playback_Status="break"))
    sess.on_esl_event(typed("CHANNEL_EXECUTE_COMPLETE", sess.id, Application="playback", Application_Data=b.file,
                            Application_Response="FILE NOT FOUND"))
    assert a.status is PlaybackStatus.BREAK and b.status is PlaybackStatus.FAILED
    sess.refuse("busy")
    assert sess.closed.wait(5) and sess.state is S.ENDED


def test_an_unconfirmed_session_is_refused_and_observers_never_hear_of_it(tmp_path):
    w, node, sess = _started(tmp_path, OneBeep())
    w.settings = load_settings(playback_dir=tmp_path, fork_grace_seconds=0.2)
    assert sess.closed.wait(5)
    assert [h.state for h in sess.states.history] == [S.OFFERED, S.REFUSED, S.ENDED]
    assert w.refusals == ["unconfirmed"] and ("kill", (sess.id, "USER_BUSY")) in node.sent
    assert w.recorder.seen == [], "a fork nobody confirmed reached the observers"


def test_an_observer_that_raises_never_breaks_the_call(tmp_path, caplog):
    class Broken(Recorder):
        def call_state(self, call, state, at):
            raise RuntimeError("observer bug")

    w, node, sess = _started(tmp_path, OneBeep())
    w.notify.targets.insert(0, Broken())
    sess.observe()
    sess.refuse("busy")
    assert sess.closed.wait(5)
    assert ("state", S.ENDED) in w.recorder.seen, "the observer after the broken one missed a state"
    assert any("observer" in r.getMessage() for r in caplog.records)
