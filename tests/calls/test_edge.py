"""Edge cases of the call edge that the lifecycle tests do not reach (found by scripts/sabotage.py):
a fork for a channel FreeSWITCH does not have, a fork that arrives before its channel, shared-mode
playback files, and calls that vanish while the ESL connection is down."""
import contextlib
import json
import uuid

import gevent
import gevent.event
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from voiceagent.calls.inbox import CallStore
from voiceagent.calls.session import CallState

from .conftest import temp_files
from .test_lifecycle import _SilentDialog, wait_until

SUBPROTOCOL = "audio.drachtio.org"


@contextlib.contextmanager
def open_fork(worker, call_id, **meta):
    """A mod_audio_fork-like WebSocket: subprotocol, path /call/<uuid>, metadata as the first frame."""
    with connect(f"{worker.fork_url_base}/call/{call_id}", subprotocols=[SUBPROTOCOL], open_timeout=5) as ws:
        ws.send(json.dumps({"uuid": call_id, "node": "fs1", "caller": "+15550001111", "callee": "+15551230000",
                            "direction": "inbound", "sampleRate": 16000, **meta}, separators=(",", ":")))
        yield ws


def wait_closed_by_server(ws, timeout):
    """True once the server closes the socket (audio frames it may still send are skipped)."""
    with gevent.Timeout(timeout, False):
        try:
            while True:
                ws.recv()
        except ConnectionClosed:
            return True
    return False


def test_fork_for_a_channel_freeswitch_does_not_have_is_refused_and_closed(make_emulator, make_worker, redis_prefix):
    # answer_inbound=False: the session itself must refuse to go on, not a failing uuid_answer
    emu = make_emulator()
    dialogs = []
    w = make_worker([emu], fork_grace_seconds=0.3, answer_inbound=False,
                    dialog_factory=lambda call: dialogs.append(call.id) or _SilentDialog())
    ghost = str(uuid.uuid4())
    with open_fork(w, ghost) as ws:
        assert wait_until(lambda: ghost in w.sessions, 5), "the fork did not create a pending session"
        sess = w.sessions[ghost]
        assert sess.closed.wait(5), "an unconfirmed session must end after the grace window"
        assert dialogs == [], "an unconfirmed call must never reach a dialog"
        assert sess.answered_at is None
        assert wait_closed_by_server(ws, 5), "the worker left the fork of a refused call open"
        assert ghost not in w.sessions
        assert CallStore(redis.Redis(), redis_prefix).get(ghost) is None


def test_fork_arriving_before_its_channel_waits_for_confirmation_then_answers(make_emulator, make_worker):
    emu = make_emulator()
    w = make_worker([emu], fork_grace_seconds=5, dialog_factory=lambda call: _SilentDialog())
    call_id = str(uuid.uuid4())
    with open_fork(w, call_id) as ws:
        assert wait_until(lambda: call_id in w.sessions, 5)
        sess = w.sessions[call_id]
        assert sess.state == CallState.PENDING
        # the channel shows up after its fork (its dialplan forks once more: that second fork is refused,
        # a live fork is never replaced from outside)
        ch = emu.place_call(destination="+15551230000", caller="+15550001111", uuid=call_id)
        assert ch.wait_answered(10), "the call was never answered"
        assert not sess.closed.is_set(), "the session gave up before its channel appeared"
        assert w.sessions.get(call_id) is sess
        assert wait_until(lambda: sess.state == CallState.ACTIVE, 5)
        ch.hangup()
        assert sess.closed.wait(10)


def test_shared_playback_mode_plays_and_deletes_its_wav_files(make_emulator, make_worker):
    emu = make_emulator()
    w = make_worker([emu], playback_mode="shared")
    calls = [emu.place_call(destination="+15551230000", caller=f"+1555000100{i}") for i in range(2)]
    for ch in calls:
        assert ch.wait_answered(10)
    seen = set()

    def look():
        seen.update(temp_files(w.settings.playback_dir))
        return bool(seen)

    assert wait_until(look, 10), "shared mode wrote no WAV into playback_dir"
    for ch in calls:
        assert ch.wait_hangup(20)
        assert [s["status"] for s in ch.segments] == ["done"]
    assert wait_until(lambda: not w.sessions, 10)
    assert temp_files(w.settings.playback_dir) == [], "WAV files of ended calls were left behind"
    assert all(name.endswith(".wav") for name in seen)


def test_call_lost_in_a_freeswitch_restart_is_cleaned_up_on_reconnect(make_emulator, make_worker, redis_prefix):
    # grace and idle are long: only the re-sync after the reconnect may end this session
    emu = make_emulator()
    w = make_worker([emu], fork_grace_seconds=30, audio_idle_seconds=30, esl_reconnect_max_delay=0.2,
                    dialog_factory=lambda call: _SilentDialog())
    ch = emu.place_call(destination="+15551230000", caller="+15550001111")
    assert ch.wait_answered(10)
    assert wait_until(lambda: ch.uuid in w.sessions, 5)
    sess = w.sessions[ch.uuid]
    assert wait_until(lambda: sess.state == CallState.ACTIVE, 5)
    node = w.nodes["fs1"]
    before = node.esl.connect_count
    emu.restart()  # every call is lost, no events
    assert wait_until(lambda: node.esl.connect_count > before and node.esl.connected, 10), "no reconnect"
    assert sess.closed.wait(5), "a call that vanished while ESL was down was never cleaned up"
    assert sess.ended_by == "system"
    assert ch.uuid not in w.sessions
    assert CallStore(redis.Redis(), redis_prefix).get(ch.uuid) is None


def test_inbox_survives_its_redis_connection_being_killed(make_emulator, make_worker, redis_prefix):
    emu = make_emulator()
    w = make_worker([emu], dialog_factory=lambda call: _SilentDialog())
    ch = emu.place_call(destination="+15551230000", caller="+15550001111")
    assert ch.wait_answered(10)
    store = CallStore(redis.Redis(), redis_prefix)
    assert wait_until(lambda: (store.get(ch.uuid) or {}).get("state") == "active", 10)
    # kill the worker's blocked BLPOP connection(s) server-side
    admin = redis.Redis()
    inbox = store.inbox_key(w.worker_id)
    killed = 0
    for c in admin.client_list():
        if "blpop" in c.get("cmd", "") or inbox in c.get("argv", ""):
            admin.client_kill_filter(_id=c["id"])
            killed += 1
    assert killed, "found no blocked inbox connection to kill"
    store.send_command(ch.uuid, {"type": "hangup"})
    assert ch.wait_hangup(15), "the inbox stopped delivering commands after a redis error"


class _DeafDialog:
    """A dialog that ignores the call ending (a bug in a dialog must not leak its greenlet)."""

    def __init__(self):
        self.started = gevent.event.Event()

    def run(self, call):
        self.started.set()
        gevent.event.Event().wait()


def test_dialog_that_ignores_the_hangup_is_killed_with_its_session(make_emulator, make_worker):
    emu = make_emulator()
    dialog = _DeafDialog()
    w = make_worker([emu], dialog_factory=lambda call: dialog)
    ch = emu.place_call(destination="+15551230000", caller="+15550001111")
    assert ch.wait_answered(10)
    assert dialog.started.wait(5)
    ch.hangup()
    assert wait_until(lambda: not w.sessions, 10)
    assert wait_until(lambda: len(w.greenlets) == 0, 5), f"greenlets left: {list(w.greenlets)}"


def test_events_for_the_same_uuid_on_another_node_do_not_touch_the_call(make_emulator, make_worker):
    # a session belongs to one node: a channel with its uuid on another node (origination_uuid reuse,
    # a replayed uuid) must not end it
    a = make_emulator(switchname="fsa")
    b = make_emulator(switchname="fsb")
    w = make_worker([a, b], dialog_factory=lambda call: _SilentDialog())
    ca = a.place_call(destination="+15551230000", caller="+15550000001")
    assert ca.wait_answered(10)
    assert wait_until(lambda: ca.uuid in w.sessions, 5)
    sess = w.sessions[ca.uuid]
    assert wait_until(lambda: sess.state == CallState.ACTIVE, 5)
    fsb = w.nodes["fsb"]
    cb = b.place_call(destination="agent_esl", context="default", caller="+15550000002", uuid=ca.uuid)
    assert wait_until(lambda: ca.uuid in fsb.channels, 5)
    cb.hangup()
    assert cb.wait_hangup(5)
    assert wait_until(lambda: ca.uuid not in fsb.channels, 5)  # fsb's hangup events have been handled
    assert not sess.ended.is_set(), "a hangup on another node ended our call"
    assert ca.uuid in a.channels and ca.uuid in w.sessions
    ca.hangup()
    assert sess.closed.wait(10)


class _BargeInDialog:
    """Once told to, plays the greeting and interrupts it as soon as it is heard."""

    def __init__(self):
        self.go = gevent.event.Event()
        self.done = gevent.event.Event()
        self.pb = None

    def run(self, call):
        import wave

        from voiceagent.calls.worker import default_greeting_path

        self.go.wait()
        with wave.open(default_greeting_path(), "rb") as f:
            pcm, rate = f.readframes(f.getnframes()), f.getframerate()
        self.pb = call.play(pcm, rate, text="greeting")
        if self.pb.started.wait(10):
            call.stop_playback()
            self.pb.finished.wait(10)
        self.done.set()
        call.ended.wait()


def test_barge_in_without_a_fork_breaks_the_file_playback(make_emulator, make_worker):
    # with the fork gone there is no killAudio: only uuid_break can stop what FreeSWITCH plays
    emu = make_emulator(speed=1.0)
    dialog = _BargeInDialog()
    w = make_worker([emu], fork_grace_seconds=30, audio_idle_seconds=30, dialog_factory=lambda call: dialog)
    ch = emu.place_call(destination="+15551230000", caller="+15550001111")
    assert ch.wait_answered(10)
    assert wait_until(lambda: ch.uuid in w.sessions, 5)
    sess = w.sessions[ch.uuid]
    assert wait_until(lambda: sess.fork is not None and sess.state == CallState.ACTIVE, 5)
    ch.fork.hangup()
    assert wait_until(lambda: sess.fork.closed, 5)
    dialog.go.set()
    assert dialog.done.wait(15)
    assert dialog.pb.file.startswith(str(w.settings.playback_dir)), "expected the shared-file fallback"
    assert dialog.pb.status == "break", f"playback not interrupted: {dialog.pb.status}"
    assert ch.segments and ch.segments[-1]["status"] == "break"
    ch.hangup()
    assert sess.closed.wait(10)


def test_fork_confirmed_by_uuid_exists_when_the_nodes_events_are_lost(make_emulator, make_worker):
    """An ESL outage can swallow a call's CHANNEL_CREATE/PARK: the fork must still be confirmed
    (by asking FreeSWITCH) within the grace window, and the call answered."""
    emu = make_emulator()
    w = make_worker([emu], fork_grace_seconds=1.0)
    node = w.nodes["fs1"]
    assert node.synced.wait(5)  # the start-up re-sync is over (it would otherwise see the new channel)
    node.esl.remove_handler(node._on_event)  # the node no longer learns about channels from events
    ch = emu.place_call(destination="+15551230000", caller="+15550001111")
    assert ch.wait_answered(5), f"refused although FreeSWITCH has the channel ({ch.hangup_cause})"
    ch.hangup()
