"""Call lifecycle through the emulator: answer, greet, hang up, limits, ownership, inbox, cleanup."""

import os

import gevent
import gevent.event
import pytest
import redis

from voiceagent.calls.inbox import CallStore
from voiceagent.calls.worker import default_greeting_path

from tests.fork_helpers import wait_until  # noqa: F401  (polls real state; other test modules import it from here)

from .conftest import set_fork_url, temp_files




def test_inbound_call_answered_greeted_hung_up_by_agent(make_emulator, make_worker, tmp_path):
    emu = make_emulator()
    w = make_worker([emu])
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    assert ch.wait_answered(10), "the owning worker never answered"
    assert ch.wait_hangup(20), "the agent never hung up after the greeting"
    # what the caller heard is the greeting, played to the end
    assert [s["status"] for s in ch.segments] == ["done"]
    heard, rate = ch.heard_audio()
    assert len(heard) / 2 / rate > 3.0
    assert wait_until(lambda: not w.sessions)
    store = CallStore(w.redis, w.settings.redis_prefix)
    assert store.live_calls() == []


def test_caller_hangs_up_during_greeting(make_emulator, make_worker):
    emu = make_emulator(speed=1.0)
    w = make_worker([emu])
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    assert ch.wait_answered(10)
    sess = None
    assert wait_until(lambda: ch.uuid in w.sessions)
    sess = w.sessions[ch.uuid]
    assert wait_until(lambda: sess.playbacks, 5)
    assert sess.playbacks[0].started.wait(5), "the greeting never started playing"
    ch.hangup()
    assert sess.closed.wait(10)
    assert sess.ended_by == "caller"
    assert ch.segments and ch.segments[0]["status"] in ("done", "break")
    assert not w.sessions


def test_twenty_concurrent_calls_leave_nothing_behind(make_emulator, make_worker, tmp_path):
    emu = make_emulator(speed=4.0)
    w = make_worker([emu], max_calls=25)
    calls = [emu.place_call(destination="+15551230000", caller=f"+1555000{i:04d}") for i in range(20)]
    # half hang up themselves once answered, the rest are hung up by the agent after the greeting
    for i, ch in enumerate(calls):
        assert ch.wait_answered(15), f"call {i} not answered"
    for ch in calls[:10]:
        ch.hangup()
    for ch in calls:
        assert ch.wait_hangup(30)
    assert wait_until(lambda: not w.sessions, 15), f"sessions left: {list(w.sessions)}"
    assert emu.wait_no_channels(10)
    assert wait_until(lambda: len(w.greenlets) == 0, 10), list(w.greenlets)
    assert temp_files(w.settings.playback_dir) == []
    assert wait_until(lambda: not w.fork_server.connections, 10)
    assert CallStore(w.redis, w.settings.redis_prefix).live_calls() == []


def test_busy_limit_refuses_before_answer(make_emulator, make_worker):
    from voiceagent.observability import metrics

    emu = make_emulator(speed=1.0)
    w = make_worker([emu], max_calls=2)
    before = metrics.CALLS_REFUSED.labels(reason="busy")._value.get()
    first = [emu.place_call(destination="+15551230000", caller=f"+1555111000{i}") for i in range(2)]
    for ch in first:
        assert ch.wait_answered(10)
    third = emu.place_call(destination="+15551230000", caller="+15551110009")
    assert third.wait_hangup(10)
    assert third.hangup_cause == "USER_BUSY"
    assert not third.answered, "a refused call must never hear an answer"
    assert metrics.CALLS_REFUSED.labels(reason="busy")._value.get() == before + 1
    for ch in first:
        ch.hangup()


class _SilentDialog:
    """A dialog that never finishes by itself."""

    def __init__(self):
        self.started = gevent.event.Event()

    def run(self, call):
        self.started.set()
        call.ended.wait()


def test_max_call_duration(make_emulator, make_worker):
    emu = make_emulator()
    w = make_worker([emu], max_call_seconds=1.0, dialog_factory=lambda call: _SilentDialog())
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    assert ch.wait_answered(10)
    assert ch.wait_hangup(10)
    assert ch.hangup_cause == "ALLOTTED_TIMEOUT"
    assert wait_until(lambda: not w.sessions)


def test_two_nodes_one_worker(make_emulator, make_worker):
    a = make_emulator(switchname="fsa")
    b = make_emulator(switchname="fsb")
    w = make_worker([a, b])
    ca = a.place_call(destination="+15551230000", caller="+15550000001")
    cb = b.place_call(destination="+15551230000", caller="+15550000002")
    assert ca.wait_answered(10) and cb.wait_answered(10)
    assert wait_until(lambda: ca.uuid in w.sessions and cb.uuid in w.sessions)
    assert w.sessions[ca.uuid].node.name == "fsa"
    assert w.sessions[cb.uuid].node.name == "fsb"
    assert ca.wait_hangup(20) and cb.wait_hangup(20)
    assert ca.segments and cb.segments


def test_two_workers_share_a_node_without_touching_each_others_calls(make_emulator, make_worker):
    emu = make_emulator()
    silent = {}
    w1 = make_worker([emu], dialog_factory=lambda call: silent.setdefault(call.id, _SilentDialog()))
    w2 = make_worker([emu], dialog_factory=lambda call: silent.setdefault(call.id, _SilentDialog()))
    set_fork_url(emu, w1.fork_url_base)
    c1 = emu.place_call(destination="+15551230000", caller="+15550000001")
    assert c1.wait_answered(10)  # its dialplan has run: the next call may go elsewhere
    set_fork_url(emu, w2.fork_url_base)
    c2 = emu.place_call(destination="+15551230000", caller="+15550000002")
    assert c2.wait_answered(10)
    assert wait_until(lambda: c1.uuid in w1.sessions and c2.uuid in w2.sessions)
    assert c1.uuid not in w2.sessions and c2.uuid not in w1.sessions
    # the agent on w2 hangs up its call; w1's call is untouched
    w2.sessions[c2.uuid].hangup()
    assert c2.wait_hangup(10)
    assert not c1.wait_hangup(0.5)
    assert c1.uuid in w1.sessions
    c1.hangup()
    assert c1.wait_hangup(10)


def test_command_through_redis_inbox_reaches_the_call(make_emulator, make_worker, redis_prefix):
    emu = make_emulator()
    # a play command may only name files under PLAYBACK_DIR or MEDIA_DIRS
    w = make_worker([emu], dialog_factory=lambda call: _SilentDialog(),
                    media_dirs=[os.path.dirname(default_greeting_path())])
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    assert ch.wait_answered(10)
    # another process's view: only Redis
    store = CallStore(redis.Redis(), redis_prefix)
    assert wait_until(lambda: any(c["id"] == ch.uuid and c["state"] == "active" for c in store.live_calls()))
    rec = store.get(ch.uuid)
    assert rec["worker"] == w.worker_id and rec["node"] == "fs1" and rec["direction"] == "inbound"
    assert rec["caller"] == "+15551230001"
    store.send_command(ch.uuid, {"type": "play", "file": default_greeting_path()})
    assert wait_until(lambda: len(ch.segments) == 1, 10)
    store.send_command(ch.uuid, {"type": "hangup"})
    assert ch.wait_hangup(10)
    with pytest.raises(Exception):
        store.send_command(ch.uuid, {"type": "dance"})


def test_fork_lost_is_restarted_once_then_call_hung_up(make_emulator, make_worker):
    emu = make_emulator(speed=1.0)
    w = make_worker([emu], fork_grace_seconds=0.5, audio_idle_seconds=30,
                    dialog_factory=lambda call: _SilentDialog())
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    assert ch.wait_answered(10)
    assert wait_until(lambda: ch.uuid in w.sessions)
    sess = w.sessions[ch.uuid]
    first_fork = ch.fork
    first_fork.hangup()  # the WebSocket dies; FreeSWITCH never reconnects by itself
    assert wait_until(lambda: ch.fork is not None and ch.fork is not first_fork and ch.fork.connected, 10), \
        "the agent did not restart the fork"
    assert sess.fork_restarts == 1
    assert not ch.wait_hangup(0.3)
    ch.fork.hangup()
    assert ch.wait_hangup(10), "a fork lost twice must end the call"
    assert sess.closed.wait(10)


def test_admission_control_refuses_when_inference_is_backed_up(make_emulator, make_worker):
    from voiceagent.observability import metrics

    emu = make_emulator(speed=1.0)
    w = make_worker([emu])
    overloaded = {"now": True}
    w.admission_check = lambda: overloaded["now"]
    before = metrics.CALLS_REFUSED.labels(reason="overloaded")._value.get()
    ch = emu.place_call(destination="+15551230000", caller="+15551230001")
    assert ch.wait_hangup(10)
    assert ch.hangup_cause == "USER_BUSY" and not ch.answered
    assert metrics.CALLS_REFUSED.labels(reason="overloaded")._value.get() == before + 1
    overloaded["now"] = False
    ch2 = emu.place_call(destination="+15551230000", caller="+15551230002")
    assert ch2.wait_answered(10)
    ch2.hangup()
