"""One node's event flood, or one call's stuck event handling, must not hold up the other calls."""
import os
import subprocess
import sys
import time
import uuid

import gevent
import gevent.event

from voiceagent.calls.worker import GreetingDialog, VoiceWorker, default_greeting_path
from voiceagent.config import load_settings

from .conftest import ESL_PASSWORD, set_fork_url
from .test_lifecycle import wait_until

FLOOD = os.path.join(os.path.dirname(__file__), "flood_esl.py")


def test_flood_on_one_node_does_not_delay_a_call_on_another(make_emulator, redis_prefix, tmp_path):
    """A node that floods events (a separate process, like a real FreeSWITCH) beside a healthy
    emulator node: the healthy node's call is answered promptly and the flooding node's queue
    stays bounded.  Before: the reader never yielded while data was waiting, the worker froze
    for the whole flood and queued every event (RSS 70 MB -> 1.85 GB)."""
    emu = make_emulator()
    flood = subprocess.Popen([sys.executable, FLOOD, "--seconds", "8", "--password", ESL_PASSWORD],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    w = None
    try:
        flood_port = int(flood.stdout.readline())
        settings = load_settings(esl_nodes=f"fs1=127.0.0.1:{emu.port},fs2=127.0.0.1:{flood_port}",
                                 esl_password=ESL_PASSWORD, fork_host="127.0.0.1", fork_port=0,
                                 redis_prefix=redis_prefix, worker_id=f"flood-{uuid.uuid4().hex[:6]}",
                                 playback_dir=tmp_path / "pb")
        w = VoiceWorker(settings)
        w.start()
        set_fork_url(emu, w.fork_url_base)
        assert all(n.esl.wait_connected(10) for n in w.nodes.values())
        seen = [0]
        w.nodes["fs2"].esl.on_event(lambda ev: seen.__setitem__(0, seen[0] + 1))
        go = time.monotonic()
        flood.stdin.write(b"go\n")
        flood.stdin.flush()
        assert wait_until(lambda: seen[0] >= 5000, 15), "the flood never arrived"
        call = emu.place_call(destination="+15551230000", caller="+15551230001")
        assert call.wait_answered(15)
        took = time.monotonic() - go
        # answered while the 8 s flood still runs: the flooding node does not hold the healthy one up
        assert took < 7.0, f"the healthy node's call was answered {took:.1f}s after the flood began"
        limit = settings.esl_event_queue_max
        assert w.nodes["fs2"].esl.queue_peak <= limit + 1000, "the flooding node's event queue grew past its bound"
        assert call.wait_hangup(15) and [s["status"] for s in call.segments] == ["done"]
    finally:
        flood.kill()
        flood.wait()
        if w is not None:
            w.stop()


def test_a_call_whose_event_handling_is_stuck_does_not_hold_the_other_calls(make_emulator, make_worker):
    """The node's dispatcher hands a call's events to that call's own lane: one call stuck in
    its event handling (here: blocked on PLAYBACK_START) leaves the node's other calls alone."""
    emu = make_emulator()
    gate, entered = gevent.event.Event(), gevent.event.Event()
    stuck = []

    def factory(call):
        if not stuck:
            stuck.append(call.id)
            original = call.on_esl_event

            def blocked(ev):
                if ev.name == "PLAYBACK_START":
                    entered.set()
                    gate.wait()
                original(ev)

            call.on_esl_event = blocked
        return GreetingDialog(default_greeting_path())

    w = make_worker([emu], dialog_factory=factory)
    try:
        first = emu.place_call(destination="+15551230000", caller="+15551230001")
        assert first.wait_answered(10)
        assert entered.wait(10), "the first call never got stuck"
        second = emu.place_call(destination="+15551230000", caller="+15551230002")
        assert second.wait_answered(10), "the second call was not answered"
        assert second.wait_hangup(20), "the second call's greeting never finished"
        assert [s["status"] for s in second.segments] == ["done"]
        assert not first.wait_hangup(0)
    finally:
        gate.set()
    assert first.wait_hangup(20)
